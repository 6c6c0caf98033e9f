"""`ibs-mprof compare`: one workload and seed under each promotion setup, side by side.

The table has the shape of the pghot series' result mails: per setup the promotions
(pgpromote_success), FTHR against the oracle, time to detect and to promote (median, p90),
useful and wasted promotions, the event rates that cost CPU (hint faults, NMIs per second),
the modelled CPU overhead split by cause, and the verdict. The folder holds the table (text,
CSV, JSON), one plot of FTHR over time with a line per setup, and each setup's full report in
a folder of its own; it is written whole or not at all, like `run --out`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runtime.choices import SETUP_NAMES
from runtime.errors import InputError
from runtime.progress import Progress, Quiet
from runtime.report import figure, json_ready, tick_edges_s, write_files
from runtime.setups import SETUPS
from safeio.atomic_dir import replace_dir
from safeio.owned import check_output_path

Result = dict[str, Any]
COMPARE_KIND = "comparison"
DEFAULT_OUT = "ibs-mprof-compare"
COMPARE_FILES = ("comparison.txt", "comparison.csv", "comparison.json", "fthr.png")
COLUMNS = ("setup", "promoted", "fthr", "fthr_oracle", "ttd_p50_ms", "ttd_p90_ms",
           "ttp_p50_ms", "ttp_p90_ms", "useful", "wasted", "hint_faults_per_s", "nmis_per_s",
           "cpu_percent", "cpu_nmis", "cpu_records", "cpu_pte_updates", "cpu_hint_faults",
           "cpu_migrations", "verdict")
"""One row per setup; the cpu_* columns split cpu_percent by cause (% of every CPU)."""
_CAUSES = {"cpu_nmis": "nmis", "cpu_records": "pghot_records",
           "cpu_pte_updates": "pte_updates", "cpu_hint_faults": "hint_faults",
           "cpu_migrations": "migrations"}


def parse_setups(text: str | None) -> list[str]:
    """--setups a,b,...: known names, each once, in the order given (default: all)."""
    if text is None:
        return list(SETUP_NAMES)
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in SETUPS:
            raise InputError(f"--setups: {name!r} is not a setup; choose from "
                             f"{', '.join(SETUP_NAMES)}")
    if len(set(names)) != len(names):
        raise InputError(f"--setups: {text!r} names a setup twice")
    return names


def check_compare_dir(text: str, inputs: Sequence[Path] = ()) -> Path:
    """The folder `--out TEXT` may become, checked before any setup runs."""
    return check_output_path("--out", text, COMPARE_KIND, inputs)


def compare(scenario: dict[str, Any], setups: Sequence[str],
            simulate: Callable[[dict[str, Any], Progress], Result],
            progress: Progress | None = None) -> dict[str, Result]:
    """Run the scenario under each setup (same workload, seed and machine); setup -> result."""
    progress = progress or Quiet()
    results: dict[str, Result] = {}
    for name in setups:
        progress.note(f"ibs-mprof compare: {name} ({len(results) + 1} of {len(setups)})")
        results[name] = simulate({**scenario, "setup": name}, progress)
    return results


def row_of(name: str, result: Result) -> dict[str, Any]:
    """The table row of one setup's result (None where a figure does not exist)."""
    seconds = result["scenario"]["duration_s"]
    vm, phase = result["vmstat"], result["phases"][-1]
    ttd, ttp = phase["time_to_detect_ms"], phase["time_to_promote_ms"]
    cost = result["overhead"]
    row: dict[str, Any] = {
        "setup": name, "promoted": vm["pgpromote_success"],
        "fthr": result["final"]["fthr"], "fthr_oracle": result["final"]["fthr_oracle"],
        "ttd_p50_ms": ttd["median"], "ttd_p90_ms": ttd["p90"],
        "ttp_p50_ms": ttp["median"], "ttp_p90_ms": ttp["p90"],
        "useful": result["migrations"]["useful"], "wasted": result["migrations"]["wasted"],
        "hint_faults_per_s": vm["numa_hint_faults"] / seconds,
        "nmis_per_s": vm["hwhint_total_events"] / seconds,
        "cpu_percent": cost["cpu_percent"],
        **{column: cost["by_cause_percent"][cause] for column, cause in _CAUSES.items()},
        "verdict": result["verdict"].split(":", 1)[0],
    }
    return row


def rows_of(results: dict[str, Result]) -> list[dict[str, Any]]:
    return [row_of(name, result) for name, result in results.items()]


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def table_text(rows: Sequence[dict[str, Any]], scenario: dict[str, Any]) -> str:
    """The comparison as aligned text (what the terminal shows and comparison.txt holds)."""
    wl = scenario["workload"]
    head = (f"ibs-mprof compare: {wl['kind']} workload, {scenario['duration_s']:g} s simulated, "
            f"seed {scenario['seed']}, pghot {scenario['pghot']['mode']} mode, "
            f"{scenario['engine']} engine")
    titles = ("setup", "promoted", "FTHR/oracle", "detect p50/p90", "promote p50/p90",
              "useful/wasted", "faults/s", "NMIs/s", "CPU %", "(nmi rec pte flt mig)",
              "verdict")
    body = [(r["setup"], str(r["promoted"]),
             f"{_num(r['fthr'], '.2f')}/{_num(r['fthr_oracle'], '.2f')}",
             f"{_ms(r['ttd_p50_ms'])}/{_ms(r['ttd_p90_ms'])}",
             f"{_ms(r['ttp_p50_ms'])}/{_ms(r['ttp_p90_ms'])}",
             f"{r['useful']}/{r['wasted']}", f"{r['hint_faults_per_s']:.0f}",
             f"{r['nmis_per_s']:.0f}", f"{r['cpu_percent']:.2f}",
             " ".join(f"{r[c]:.1f}" for c in _CAUSES), r["verdict"]) for r in rows]
    widths = [max(len(t), *(len(b[i]) for b in body)) for i, t in enumerate(titles)]
    lines = [head, "", "  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip()
              for b in body]
    lines += ["", "detect: first READY in pghot (mainline NUMAB2: the promoting fault); "
              "p50/p90 over the last phase's newly hot pages that reached it. CPU %: modelled, "
              "of every CPU; split into NMIs, pghot records, PTE updates, hint faults and "
              "migrations."]
    return "\n".join(lines)


def table_csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def comparison_json(results: dict[str, Result]) -> str:
    rows = rows_of(results)
    return json.dumps(json_ready({"schema": "ibs-mprof comparison 1", "rows": rows,
                                  "setups": list(results)}),
                      indent=1, allow_nan=False) + "\n"


def plot_fthr(results: dict[str, Result], path: Path) -> None:
    """FTHR over time, a line per setup, and the oracle's."""
    first = next(iter(results.values()))
    with figure(path, "Fast-tier hit ratio by promotion setup") as fig:
        ax = fig.add_subplot()
        for name, result in results.items():
            t = tick_edges_s(result)[1:]
            ax.plot(t, [float("nan") if r["fthr"] is None else r["fthr"]
                        for r in result["timeline"]], linewidth=2, label=name)
        t = tick_edges_s(first)[1:]
        ax.plot(t, [float("nan") if r["fthr_oracle"] is None else r["fthr_oracle"]
                    for r in first["timeline"]], color="black", linestyle="--",
                label="oracle (top-K pages on the fast tier)")
        ax.set_xlim(0, first["scenario"]["duration_s"])
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("fast-tier hit ratio (share of L3-miss accesses)")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)


def write_comparison(results: dict[str, Result], scenario: dict[str, Any], out_dir: Path,
                     inputs: Sequence[Path] = ()) -> Path:
    """The comparison folder, replaced whole: the table, the plot, a report per setup."""
    rows = rows_of(results)

    def fill(folder: Path) -> None:
        (folder / "comparison.txt").write_text(table_text(rows, scenario) + "\n",
                                               encoding="utf-8")
        (folder / "comparison.csv").write_text(table_csv(rows), encoding="utf-8")
        (folder / "comparison.json").write_text(comparison_json(results), encoding="utf-8")
        plot_fthr(results, folder / "fthr.png")
        for name, result in results.items():
            (folder / name).mkdir()
            write_files(result, folder / name)

    return replace_dir(out_dir, COMPARE_KIND, fill, inputs=inputs)


__all__ = ["COLUMNS", "COMPARE_FILES", "COMPARE_KIND", "DEFAULT_OUT", "check_compare_dir",
           "compare", "comparison_json", "parse_setups", "plot_fthr", "rows_of",
           "table_csv", "table_text", "write_comparison"]
