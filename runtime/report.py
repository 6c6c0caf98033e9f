"""Turn a `simulate()` result into what a memory-tiering engineer reads and keeps.

`summary_text` is the terminal summary: what was simulated, the headline numbers against ground
truth, every sample accounted for (as equations a reader can check), and the verdict.
`write_report` writes the report folder atomically: report.json (the whole result), summary.txt,
timeline.csv, heatmap.txt (damo-style `time_ns addr freq` for gnuplot), vmstat.txt (the
counters in /proc/vmstat form) and three PNG plots.

Plots use matplotlib's object API on an Agg canvas, never pyplot: no global backend switch for a
caller that imports this module, no window can open, and each figure is freed with its object.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import numpy as np
from matplotlib import style as mpl_style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from generated.ibs_mprof import PAGE_SHIFT
from runtime.pghot.tunables import FREQ_WINDOW_DEFAULT_MS
from runtime.setups import DEFAULT_SETUP, SETUPS
from runtime.vmstat import proc_text
from safeio.atomic_dir import replace_dir
from safeio.killpoints import kill_point
from safeio.owned import check_output_path

Result = Mapping[str, Any]
T = TypeVar("T")
U = TypeVar("U")

REPORT_FILES = ("report.json", "summary.txt", "timeline.csv", "heatmap.txt", "vmstat.txt",
                "fthr.png", "heatmap.png", "ttd_cdf.png")
"""What `write_report` writes, in the order it returns them."""

LABEL_WIDTH = 22
WRAP_WIDTH = 100
MIB = 1 << 20
GIB = 1 << 30
PAGE_BYTES = 1 << PAGE_SHIFT
# PNG text chunks that would make two renders of the same result differ (version, time).
_PNG_METADATA: dict[str, Any] = {"Software": None}


# --- formatting ------------------------------------------------------------------------------

def _missing(value: float | None) -> bool:
    """No number to show: None (no data, e.g. 0/0) or a NaN/inf that slipped through."""
    return value is None or not math.isfinite(value)


def _na(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None or _missing(value) else format(value, spec)


def _pct(value: float | None) -> str:
    return "n/a" if value is None or _missing(value) else f"{100.0 * value:.1f}%"


def _ms(value: float | None) -> str:
    """A duration: seconds with 2 decimals above 1000 ms, so phase-length times stay readable."""
    if value is None or _missing(value):
        return "n/a"
    if value > 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.2f} ms"


def _unit(value: float | None, unit: str) -> str:
    """The unit after a number, or nothing after n/a."""
    return "" if value is None or _missing(value) else unit


def _row(label: str, text: str) -> str:
    """One labelled line of the aligned block, wrapped under its value column past WRAP_WIDTH."""
    indent = " " * (LABEL_WIDTH + 1)
    lines = textwrap.wrap(text, WRAP_WIDTH, initial_indent=f"{label:<{LABEL_WIDTH}} ",
                          subsequent_indent=indent, break_long_words=False,
                          break_on_hyphens=False, drop_whitespace=True)
    return "\n".join(lines) if lines else label


def _ranges(ids: Sequence[int]) -> str:
    """Node ids as compact ranges ("0-3,8"), so 64-node machines fit on one line."""
    out: list[str] = []
    ordered = sorted(ids)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def _equation(label: str, lhs: tuple[str, int], terms: Sequence[tuple[str, int]],
              note: str = "") -> list[str]:
    """`lhs = a + b + ...` wrapped at WRAP_WIDTH, with 'ok' or the mismatch spelled out.

    The conservation checks in metrics raise on a mismatch, but a report read from an older or
    hand-edited report.json should still show the reader where the numbers do not add up.
    """
    total = sum(count for _, count in terms)
    head = f"{lhs[0]} {lhs[1]} {'=' if total == lhs[1] else '!='} ".lstrip()
    check = "[ok]" if total == lhs[1] else f"[MISMATCH: terms sum to {total}]"
    room = WRAP_WIDTH - LABEL_WIDTH - 1
    lines = [head]
    for k, (name, count) in enumerate(terms):
        piece = f"{name} {count}" if k == 0 else f" + {name} {count}"
        if k and len(lines[-1] + piece) > room:
            lines.append(" " * len(head) + piece.lstrip())
        else:
            lines[-1] += piece
    lines[-1] += f"  {check}" + (f"  {note}" if note else "")
    return [_row(label if i == 0 else "", line) for i, line in enumerate(lines)]


# --- summary ---------------------------------------------------------------------------------

def summary_text(result: Result) -> str:
    """The terminal summary: what ran, headline numbers, sample accounting, then the verdict."""
    lines = _header(result)
    lines.append("")
    lines += _placement(result)
    lines += _timing(result)
    lines += _migration_lines(result)
    lines += _sample_lines(result["sampling"])
    lines += _cost_lines(result)
    for text in result.get("pitfalls", {}).values():
        lines += textwrap.wrap(f"kernel pitfall: {text}", 100, subsequent_indent="  ")
    lines.append("")
    lines.append(f"verdict: {result['verdict']}")
    return "\n".join(lines)


def _header(result: Result) -> list[str]:
    """What was simulated, so a pasted summary is enough to reproduce or question the run."""
    sc = result["scenario"]
    wl, prof, pg = sc["workload"], sc["profiler"], sc["pghot"]
    machine = result["machine"]
    kinds: dict[str, int] = {}
    for node in machine["nodes"]:
        kinds[node["memory"].upper()] = kinds.get(node["memory"].upper(), 0) + 1
    pages = result["workload"]["pages"]
    counts = [str(p["hot_pages"]) for p in result["workload"]["phases"]]
    hot = " -> ".join(_elided(counts, f"... ({len(counts)} phases) ..."))
    unit = "ops" if prof["cnt_ctl"] else "cycles"
    window = pg["promote_freq_window_ms"]
    if window is None:
        window = f"{FREQ_WINDOW_DEFAULT_MS.get(pg['mode'], 'n/a')} ms (default)"
    else:
        window = f"{window} ms"
    engine = result.get("engine", {})
    duration = _ms(sc["duration_s"] * 1000.0)
    setup = SETUPS[sc.get("setup", DEFAULT_SETUP)]
    sources = setup.sources if pg["enabled_sources"] is None else pg["enabled_sources"]
    return [
        f"ibs-mprof run: {wl['kind']} on {' + '.join(f'{n} {k}' for k, n in kinds.items())} "
        f"node(s), {machine['cpus']} CPUs, {duration} simulated, seed {sc['seed']}",
        _row("machine", f"{machine['cpus']} CPUs; {_node_groups(machine['nodes'])}"),
        _row("workload", f"{wl['kind']}, region {pages * PAGE_BYTES / MIB:g} MiB ({pages} pages) "
                         f"on {wl['placement']}; hot pages {hot}"),
        _row("setup", f"{setup.name}: {setup.doc}"),
        _row("profiler", (f"IBS period {prof['period']} {unit}, l3_miss_only "
                          f"{'yes' if prof['l3_miss_only'] else 'no'}; "
                          f"driver {sc['driver']['variant']}") if setup.ibs else
             f"IBS not used (period {prof['period']} ops samples the LRU ages only)"),
        *([_row("NUMA balancing", f"numa_balancing={setup.numa_balancing}, scan "
                                  f"{sc['numab']['scan_size_mb']} MB every "
                                  f"{sc['numab']['scan_period_min_ms']}.."
                                  f"{sc['numab']['scan_period_max_ms']} ms after "
                                  f"{sc['numab']['scan_delay_ms']} ms"
                                  + (f", hot threshold {sc['numab']['hot_threshold_ms']} ms"
                                     if setup.hint_faults == "numab2" else ""))]
          if setup.hint_faults else []),
        _row("pghot", f"{pg['mode']} mode, threshold {pg['freq_threshold']} in {window}, "
                      f"sources 0x{sources:x}, ready {pg['ready_rule']}"),
        _row("run", f"{duration} simulated, seed {sc['seed']}, timeline "
                    f"{_ms(sc['metrics']['timeline_ms'])}; {engine.get('name', 'n/a')} engine, "
                    f"{_na(engine.get('wall_s'))} s wall"),
    ]


def _node_groups(nodes: Sequence[Mapping[str, Any]]) -> str:
    """Nodes grouped by tier, memory and size: "top 1 x dram 2048 MiB (node 0); ..."."""
    groups: dict[tuple[str, str, int], list[int]] = {}
    for node in nodes:
        groups.setdefault((node["tier"], node["memory"], node["pages"]), []).append(node["nid"])
    return "; ".join(f"{tier} {len(ids)} x {mem} {pages * PAGE_BYTES / MIB:g} MiB "
                     f"(node {_ranges(ids)})" for (tier, mem, pages), ids in groups.items())


def _placement(result: Result) -> list[str]:
    """Where the hot set ended up: FTHR vs oracle, then promoted and ready set quality."""
    final = result["final"]
    last = result["phases"][-1]
    pro, ready = last["promoted"], last["ready"]
    return [
        _row("fast-tier hit ratio", f"{_na(final['fthr'])} vs oracle {_na(final['fthr_oracle'])}"
                                    f": placement efficiency {_pct(final['placement_efficiency'])}"
                                    f"; {final['hot_pages_on_top']}/{final['hot_pages']} hot "
                                    "pages on top"),
        _row("promoted (last phase)", f"precision {_na(pro['precision'])}  recall "
                                      f"{_na(pro['recall'])}  F1 {_na(pro['f1'])}  weighted "
                                      f"{_na(pro['weighted_recall'])}  ({pro['pages']} pages)"),
        _row("ready set (last phase)", f"precision {_na(ready['precision_mean'])}  recall "
                                       f"{_na(ready['recall_mean'])}  weighted "
                                       f"{_na(ready['weighted_recall_mean'])}  (tick means; "
                                       f"{result['first_ready_pages']} ever ready)"),
    ]


def _timing(result: Result) -> list[str]:
    """Per phase: how fast its hot pages got detected and promoted; recovery after a shift."""
    cell = 28
    lines = [_row("time to", f"{'detect med / p90 (reached)':<{cell}}"
                             f"{'promote med / p90 (reached)':<{cell}}newly hot, off top")]
    phases = result["phases"]
    more = f"... {len(phases) - SHOWN_PHASES} more phases in report.json"
    for phase in _elided(phases, None):
        if phase is None:
            lines.append(_row("", more))
            continue
        ttd, ttp = phase["time_to_detect_ms"], phase["time_to_promote_ms"]
        cells = [f"{_ms(q['median'])} / {_ms(q['p90'])} ({_pct(q['fraction'])})"
                 for q in (ttd, ttp)]
        label = phase["label"] if len(phase["label"]) < LABEL_WIDTH - 2 else \
            phase["label"][:LABEL_WIDTH - 5] + "..."
        lines.append(_row(f"  {label}", f"{cells[0]:<{cell - 1}} {cells[1]:<{cell - 1}} "
                                        f"{ttd.get('of_pages', 'n/a')}"))
    for i, phase in enumerate(_elided(phases[1:], None)):
        if phase is None:
            lines.append(_row("", more))
            continue
        text = f"{phase['label']} at {_ms(phase['start_ms'])}: {_ms(phase['recovery_ms'])}"
        if phase["recovery_ms"] is None:
            text += " (FTHR never got back to 90% of its pre-shift value)"
        lines.append(_row("recovery after shift" if i == 0 else "", text))
    return lines


SHOWN_PHASES = 12
"""Phases the terminal summary lists one by one: the first and last six of a longer run."""


def _elided(items: Sequence[T], marker: U) -> list[T | U]:
    """items, or their first and last SHOWN_PHASES / 2 around `marker` when there are more
    than SHOWN_PHASES (a run of 3000 phases would print 6000 summary lines)."""
    if len(items) <= SHOWN_PHASES:
        return list(items)
    half = SHOWN_PHASES // 2
    return [*items[:half], marker, *items[-half:]]


def _migration_lines(result: Result) -> list[str]:
    mig = result["migrations"]
    return [
        *_equation("promotions", ("", mig["promotions"]),
                   [("useful", mig["useful"]), ("wasted", mig["wasted"])],
                   f"ping-pong {mig['ping_pong']}, failed {mig.get('promote_failed', 'n/a')}, "
                   f"{_na(mig['promoted_mb_per_s'])} MB/s"),
        _row("demotions", str(mig["demotions"])),
    ]


def _sample_lines(s: Mapping[str, Any]) -> list[str]:
    """Every tagged op and sample accounted for, as the chain of equations that proves it.

    Zero-count filters are left out of the equations (they add nothing) but named after them,
    so a reader sees that e.g. ring_full or toptier_page was checked and stayed at 0.
    """
    driver, pghot = s["driver"], s["pghot"]
    calls = sum(pghot.values())
    hint_calls = s.get("pghot_calls_hint_faults") if s.get("hint_faults") else None
    always = ("pushed", "ring_full", "recorded")
    zero = [k for k, v in {**driver, **pghot}.items() if not v and k not in always]
    lines = [
        *_equation("samples", ("tagged ops", s["tagged_ops"]),
                   [*((f"discarded {k}", v) for k, v in s["tags_discarded"].items()),
                    ("kept", s["tags_kept"])]),
        *_equation("", ("kept", s["tags_kept"]),
                   [("NMIs", s["total"]), ("interrupts lost", s["interrupts_lost"])]),
        *_equation("", ("NMIs", s["total"]),
                   [("dropped ring_full" if k == "ring_full" else k, v)
                    for k, v in driver.items() if v or k in always]),
        *_equation("", ("pushed", driver["pushed"]),
                   [("pghot calls" if hint_calls is None else "IBS pghot calls",
                     calls if hint_calls is None else calls - hint_calls),
                    ("in rings at end", s["in_rings_at_end"])]),
        *([] if not hint_calls else _equation(
            "", ("pghot calls", calls),
            [("from IBS", calls - hint_calls), ("from hint faults", hint_calls)])),
        *_equation("", ("pghot calls", calls),
                   [(k, v) for k, v in pghot.items() if v or k in always]),
    ]
    if zero:
        lines.append(_row("", f"zero counts: {', '.join(dict.fromkeys(zero))}"))
    lines.append(_row("", f"{_na(s['nmi_per_cpu_per_s'], '.0f')} NMIs per CPU-second, yield "
                          f"{_pct(s['yield'])}, ring drop rate {_pct(s['drop_rate'])}"))
    hints = s.get("hint_faults")
    if hints:
        outcomes = hints["outcomes"]
        lines += [
            _row("hint faults", f"{hints['pte_updates']} PTEs marked in {hints['scan_passes']} "
                                f"scan passes (period {_ms(hints['scan_period_ms_at_end'])} at "
                                f"the end); {hints['faults']} hint faults "
                                f"({_na(hints['faults_per_s'], '.0f')}/s, {hints['local']} "
                                "local)"),
            *_equation("", ("hint faults", hints["faults"]),
                       [(k, v) for k, v in outcomes.items() if v and k != "no_folio"]),
        ]
    return lines


def _cost_lines(result: Result) -> list[str]:
    """Sample lag and the modelled CPU cost, with the unit costs the percentage rests on."""
    lag, cost, s = result["lag_ms"], result["overhead"], result["sampling"]
    mig = result["migrations"]
    cpus = result["machine"]["cpus"]
    moved = mig["promotions"] + mig["demotions"]
    calls = sum(s["pghot"].values())
    note = cost.get("budget_note")
    counts = cost.get("counts", {"nmis": s["total"], "pghot_records": calls,
                                 "migrations": moved})
    unit_cost = {"nmis": ("NMIs", "nmi_cost_us"), "pghot_records": ("records",
                                                                    "record_cost_us"),
                 "pte_updates": ("PTE updates", "pte_update_cost_us"),
                 "hint_faults": ("hint faults", "hint_fault_cost_us"),
                 "migrations": ("migrations", "migrate_cost_us")}
    parts = [f"{counts[k]} {label} x {cost[key]:g} us" for k, (label, key) in unit_cost.items()
             if counts.get(k) and key in cost]
    return [
        _row("lag sample->record", f"median {_ms(lag['median'])}  p90 {_ms(lag['p90'])}  "
                                   f"max {_ms(lag['max'])}  ({lag['count']} samples)"),
        _row("CPU overhead (model)", f"{_na(cost['cpu_percent'])}{_unit(cost['cpu_percent'], '%')} "
                                     f"of {cpus} CPUs"
                                     + (f"; {note}" if note else "")),
        _row("", "from " + (" + ".join(parts) if parts else "nothing")),
    ]


# --- machine-readable files ------------------------------------------------------------------

def json_ready(value: Any) -> Any:
    """A copy strict JSON accepts: NaN/inf become null, numpy scalars and tuples plain values."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_ready(v) for v in value]
    return value


def report_json(result: Result) -> str:
    """report.json text: the whole result, key order kept, strict JSON (allow_nan=False)."""
    return json.dumps(json_ready(result), indent=1, sort_keys=False, allow_nan=False) + "\n"


def timeline_csv(result: Result) -> str:
    """One row per tick; header = the tick keys in first-seen order; None is an empty cell."""
    rows: list[Mapping[str, Any]] = result["timeline"]
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(keys), lineterminator="\n")
    if keys:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in json_ready(row).items()})
    return buf.getvalue()


def bucket_start_pfns(ranges: Sequence[Sequence[int]], buckets: int) -> list[int]:
    """First PFN of each heatmap bucket (the inverse of callfold.heat_bucket).

    Buckets split the concatenated lower-tier PFN ranges evenly: offset o falls in bucket
    o * buckets // total, so bucket b starts at offset ceil(b * total / buckets).
    """
    return [_pfn_at(ranges, o) for o in _bucket_offsets(ranges, buckets)[:-1]]


def _bucket_offsets(ranges: Sequence[Sequence[int]], buckets: int) -> list[int]:
    """Page offset of each bucket edge within the lower tier, buckets + 1 values."""
    total = sum(end - start for start, end in ranges)
    return [-(-b * total // buckets) for b in range(buckets)] + [total]


def _pfn_at(ranges: Sequence[Sequence[int]], offset: int) -> int:
    for start, end in ranges:
        if offset < end - start:
            return int(start + offset)
        offset -= end - start
    return int(ranges[-1][1]) if ranges else 0


def heatmap_text(result: Result) -> str:
    """damo-style `time_ns addr freq` lines (every tick x bucket, zeros included) for gnuplot.

    time_ns is the tick's end time, addr the lower-tier physical address where the bucket
    starts (pfn << PAGE_SHIFT), freq the samples pghot was handed for that bucket in that tick.
    """
    heat = result["heatmap"]
    starts = [pfn << PAGE_SHIFT for pfn in bucket_start_pfns(heat["lower_pfn_ranges"],
                                                            heat["buckets"])]
    lines: list[str] = []
    for tick, row in zip(result["timeline"], heat["rows"], strict=True):
        t_ns = round(tick["t_ms"] * 1_000_000)
        lines += [f"{t_ns} {addr} {int(freq)}" for addr, freq in zip(starts, row, strict=True)]
    return "".join(line + "\n" for line in lines)


# --- plots -----------------------------------------------------------------------------------

@contextmanager
def figure(path: Path, title: str) -> Iterator[Figure]:
    """A figure on an Agg canvas with default style (a user's matplotlibrc cannot leak in),
    saved as PNG without the version/time text chunks, so equal results give equal bytes."""
    with mpl_style.context("default"), matplotlib.rc_context(
            {"svg.hashsalt": "ibs-mprof", "figure.dpi": 100, "savefig.dpi": 100}):
        fig = Figure(figsize=(10, 5.5), layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(title)
        yield fig
        fig.savefig(path, format="png", metadata=_PNG_METADATA)


def tick_edges_s(result: Result) -> list[float]:
    """Tick interval edges in seconds: tick i covers (t[i-1], t[i]], the first from 0."""
    return [0.0] + [row["t_ms"] / 1000.0 for row in result["timeline"]]


def _phase_lines(ax: Axes, result: Result) -> None:
    """Dotted vertical lines where the hot set changes, labelled with the new phase."""
    for phase in result["phases"][1:]:
        x = phase["start_ms"] / 1000.0
        ax.axvline(x, color="grey", linestyle=":", linewidth=1.2)
        ax.annotate(phase["label"], (x, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", fontsize=8, color="grey")


def _plot_fthr(result: Result, path: Path) -> None:
    """FTHR vs the oracle over time with the promotion rate behind it: is it catching up?"""
    rows = result["timeline"]
    edges = tick_edges_s(result)
    t = edges[1:]
    setup = result["scenario"].get("setup", DEFAULT_SETUP)
    with figure(path, f"Fast-tier hit ratio: {setup} vs oracle placement") as fig:
        ax = fig.add_subplot()
        rate = _migration_rates(ax, rows, edges)
        ax.plot(t, [_nan(r["fthr"]) for r in rows], color="tab:blue", linewidth=2,
                label="fast-tier hit ratio (FTHR)")
        ax.plot(t, [_nan(r["fthr_oracle"]) for r in rows], color="black", linestyle="--",
                label="oracle FTHR (top-K pages on the fast tier)")
        _phase_lines(ax, result)
        ax.set_zorder(rate.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.set_xlim(0, max(t[-1] if t else 0, result["scenario"]["duration_s"]))
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("fast-tier hit ratio (share of L3-miss accesses)")
        rate.set_ylabel("migrations per second (pages/s)")
        rate.set_ylim(bottom=0)
        handles, labels = ax.get_legend_handles_labels()
        more_h, more_l = rate.get_legend_handles_labels()
        ax.legend(handles + more_h, labels + more_l, loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)


def _migration_rates(ax: Axes, rows: Sequence[Mapping[str, Any]], edges: list[float]) -> Axes:
    """Promotions (and demotions, if any) per second per tick on a second y axis.

    The timeline carries cumulative counts; the rate over tick i is the difference over its
    length, drawn as stairs over the tick's interval so it lines up with the FTHR it caused.
    """
    rate = ax.twinx()
    for key, color in (("promotions", "tab:green"), ("demotions", "tab:red")):
        cum = [0] + [r[key] for r in rows]
        per_s = [(cum[i + 1] - cum[i]) / max(edges[i + 1] - edges[i], 1e-12)
                 for i in range(len(rows))]
        if key == "promotions" or any(per_s):
            rate.stairs(per_s, edges, baseline=None, alpha=0.45, linewidth=1, color=color,
                        label=f"{key}/s")
    return rate


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _plot_heatmap(result: Result, path: Path) -> None:
    """Samples per lower-tier address bucket and tick: the only view pghot gets of CXL pages."""
    heat = result["heatmap"]
    rows = heat["rows"]
    ranges = heat["lower_pfn_ranges"]
    offsets = _bucket_offsets(ranges, heat["buckets"])
    total_bytes = offsets[-1] << PAGE_SHIFT
    unit, scale = ("GiB", GIB) if total_bytes >= GIB else ("MiB", MIB)
    y = np.asarray(offsets, dtype=np.float64) * (1 << PAGE_SHIFT) / scale
    x = np.asarray(tick_edges_s(result), dtype=np.float64)
    title = "What pghot was told about lower-tier pages: IBS samples per address bucket"
    with figure(path, title) as fig:
        ax = fig.add_subplot()
        if rows:
            counts = np.asarray(rows, dtype=np.float64).T
            # Square-root colours: the hot band would otherwise hide the cold pages' samples.
            norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=max(float(counts.max()), 1.0))
            mesh = ax.pcolormesh(x, y, counts, cmap="viridis", shading="flat", norm=norm)
            fig.colorbar(mesh, ax=ax, label="samples per bucket per tick (square-root scale)")
        else:
            ax.text(0.5, 0.5, "no timeline ticks", ha="center", transform=ax.transAxes)
        base = 0
        for start, end in ranges[:-1]:
            base += end - start
            ax.axhline(base * (1 << PAGE_SHIFT) / scale, color="white", linewidth=0.8,
                       linestyle="--")
        _phase_lines(ax, result)
        ax.set_xlabel("simulated time (s)")
        nodes = ", ".join(f"node {n['nid']}" for n in result["machine"]["nodes"]
                          if n["tier"] != "top")
        ax.set_ylabel(f"offset within the lower tier ({unit}; {nodes})")


def _plot_ttd_cdf(result: Result, path: Path) -> None:
    """How fast newly hot pages get detected (ready) and promoted, per phase.

    Uses the raw per-page times if the result carries them ("values"), else the quantiles it
    does carry, drawn as steps through (median, 0.5 f), (p90, 0.9 f), (max, f) with f the
    fraction reached: a lower bound of the true CDF, labelled as such.
    """
    title = "Time to detect (first READY) and to promote the phase's hot pages"
    colors = [f"C{i % 10}" for i in range(len(result["phases"]))]
    with figure(path, title) as fig:
        ax = fig.add_subplot()
        kinds: set[str] = set()
        for phase, color in zip(result["phases"], colors, strict=True):
            for key, what, style in (("time_to_detect_ms", "detect", "-"),
                                     ("time_to_promote_ms", "promote", "--")):
                kinds.add(_cdf_curve(ax, phase[key], f"{phase['label']}: {what}", color, style))
        kinds.discard("")
        if not kinds:
            ax.text(0.5, 0.5, "no hot page was detected or promoted", ha="center",
                    transform=ax.transAxes)
        if "quantiles" in kinds:
            ax.text(0.01, 0.98, "result has median/p90/max only (no per-page times): markers are\n"
                    "those quantiles, steps between them a lower bound of the CDF", va="top",
                    fontsize=8, color="dimgrey", transform=ax.transAxes)
        ax.set_xlabel("time since the phase started (s)")
        ax.set_ylabel("fraction of the phase's hot pages (off the fast tier at its start)")
        ax.set_ylim(0, 1.05)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        if kinds:
            ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.88), fontsize=8)


def _cdf_curve(ax: Axes, q: Mapping[str, Any], label: str, color: str, style: str) -> str:
    """Draw one CDF: empirical from q["values"] if present, else from quantile points.

    Returns what was drawn ("values", "quantiles", or "" when no page got there), so the
    caller can explain quantile curves once instead of in every legend entry.
    """
    of = q.get("of_pages")
    values = q.get("values")
    if not of or not q.get("count"):
        return ""
    if values:
        xs = np.sort(np.asarray(values, dtype=np.float64)) / 1000.0
        ys = np.arange(1, xs.size + 1, dtype=np.float64) / of
        ax.step(np.r_[0.0, xs], np.r_[0.0, ys], where="post", color=color, linestyle=style,
                label=f"{label} ({xs.size} pages)")
        return "values"
    frac = q["fraction"] or 0.0
    xs_q = [0.0] + [q[k] / 1000.0 for k in ("median", "p90", "max")]
    ys_q = [0.0, 0.5 * frac, 0.9 * frac, frac]
    ax.step(xs_q, ys_q, where="post", color=color, linestyle=style, marker="o", markersize=4,
            label=f"{label} (quantiles)")
    return "quantiles"


# --- atomic folder ---------------------------------------------------------------------------

REPORT_KIND = "report"
"""The kind named in a report folder's ownership marker (safeio.owned)."""


def check_report_dir(text: str, inputs: Sequence[Path] = ()) -> Path:
    """The absolute report folder `--out TEXT`, or InputError (one line) when it is not ours
    to replace: checked before a run, so a long simulation never ends in a refusal or, worse,
    in deleting a user's folder."""
    return check_output_path("--out", text, REPORT_KIND, inputs)


def write_report(result: Result, out_dir: Path, inputs: Sequence[Path] = (),
                 extra: Mapping[str, Path] | None = None) -> list[Path]:
    """Write every report file into out_dir, replacing it as a whole or not at all.

    Files are built in a fresh hidden folder beside out_dir (same file system, so renames are
    atomic), marked as ours, then swapped in; any failure removes that folder and leaves an
    old out_dir as it was, so a reader never sees a half-written report or a mix of two runs.
    Only an absent or empty folder, or a report folder this tool wrote and nobody changed,
    is replaced (`safeio.owned`). A run killed outright (SIGKILL, power loss) can leave its
    hidden folder behind: the next run removes such folders when their marker proves them
    ours and their process is gone, first restoring out_dir from one if only that copy of
    the old report is left.
    """
    extra = extra or {}

    def fill(folder: Path) -> None:
        write_files(result, folder)
        for name, path in extra.items():  # files the run streamed aside (same file system)
            os.replace(path, folder / name)

    out_dir = replace_dir(out_dir, REPORT_KIND, fill, inputs=inputs)
    return [out_dir / name for name in (*REPORT_FILES, *extra)]


def write_files(result: Result, folder: Path, summary: str | None = None) -> None:
    """Write each file of REPORT_FILES into folder (the text ones first: they are the ones
    people diff); the caller owns the folder (write_report, or a comparison's setup).
    `summary`: the summary's text when the caller words it (ingest), else run's."""
    (folder / "report.json").write_text(report_json(result), encoding="utf-8")
    kill_point("run-temp-partial")
    text = summary_text(result) if summary is None else summary
    (folder / "summary.txt").write_text(text + "\n", encoding="utf-8")
    (folder / "timeline.csv").write_text(timeline_csv(result), encoding="utf-8")
    (folder / "heatmap.txt").write_text(heatmap_text(result), encoding="utf-8")
    (folder / "vmstat.txt").write_text(proc_text(result["vmstat"]), encoding="utf-8")
    _plot_fthr(result, folder / "fthr.png")
    _plot_heatmap(result, folder / "heatmap.png")
    _plot_ttd_cdf(result, folder / "ttd_cdf.png")


