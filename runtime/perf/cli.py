"""`ibs-mprof topology --capture [--sysfs ROOT]`: this machine's memory topology as YAML;
`ibs-mprof ingest PERF.DATA [--topology FILE] [--set ...] [--out DIR] [--json] [--quiet]`: a
perf recording through the driver model, pghot and kmigrated, written as `run`'s report
folder plus pages.csv.

runtime/cli.py adds the sub-parsers with add_arguments / add_ingest_arguments and calls
command / ingest_command. Building the parser imports no model (numpy, the accessors): what
the commands need is imported inside them, so `ibs-mprof --help` stays instant.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.errors import InputError

if TYPE_CHECKING:
    from runtime.topology import Topology

INGEST_OUT = "ibs-mprof-ingest"
NOT_FOR_RECORDINGS = {
    "workload": "the recording is the workload",
    "machine": "the machine is the topology (--topology, or the recording's header)",
    "llc": "the recording says which ops missed L3",
    "numab": "a recording holds IBS samples only: no NUMA-balancing scanner runs",
    "setup": "a recording feeds pghot through the IBS driver (pghot-hwhints)",
    "engine": "a recording runs on its own engine",
    "duration_s": "the recording's length is the run's",
    "seed": "nothing is drawn at random",
    "profiler.period": "perf's sampling period made the recording",
    "profiler.cnt_ctl": "perf's sampling period made the recording",
}
"""Scenario keys (or sections) `ingest --set` refuses, and why."""
FOR_RECORDINGS = ("machine.watermark_scale_factor",)
"""Keys inside a refused section that still apply: a sysctl of the recorded machine."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--capture", action="store_true",
                        help="read the topology from sysfs and print it as YAML (for "
                        "`ingest --topology`, `replay --topology`)")
    parser.add_argument("--sysfs", metavar="ROOT", default="/sys",
                        help="sysfs mount point to read (default /sys; a copy of another "
                        "machine's tree works too)")


def command(args: argparse.Namespace) -> int:
    from runtime.perf.sysfs import capture, topology_yaml

    if not args.capture:
        raise InputError("topology: nothing to do; give --capture to print this machine's "
                         "topology as YAML")
    root = Path(args.sysfs)
    if not root.is_dir():
        raise InputError(f"topology: --sysfs {args.sysfs!r} is not a folder")
    topology, notes = capture(root)
    print(topology_yaml(topology, notes, str(root)), end="")
    return 0


# --- ingest ------------------------------------------------------------------------------------

def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", metavar="PERF.DATA",
                        help="perf.data of `perf record -a -e ibs_op// --raw-samples` (with "
                        "physical addresses: ibs_op/l3missonly=1/ on Zen4 and later)")
    parser.add_argument("--topology", metavar="FILE",
                        help="YAML of the machine perf ran on (`ibs-mprof topology --capture` "
                        "there); default: the recording's NUMA_TOPOLOGY and MEM_TOPOLOGY")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a scenario key that applies to a recording (profiler "
                        "filters, driver, pghot, kmigrated, demotion, metrics), e.g. "
                        "pghot.freq_threshold=3 (repeatable)")
    parser.add_argument("--out", default=INGEST_OUT, metavar="DIR",
                        help=f"report folder (default ./{INGEST_OUT}/): created, or replaced "
                        "as a whole if it is an earlier report of ours; any other folder is "
                        "refused")
    parser.add_argument("--json", action="store_true", help="print report.json to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def ingest_command(args: argparse.Namespace) -> int:
    """Check everything the user gave before reading the recording, run it, write the
    report; every bad input is one InputError line and nothing written."""
    from runtime import report
    from runtime.progress import progress_bar
    from runtime.recorded import run_recording

    path = Path(args.recording)
    inputs = [path] + ([Path(args.topology)] if args.topology else [])
    scenario = recording_scenario(list(args.set or []))
    out_dir = report.check_report_dir(args.out, inputs)
    topology, notes = _topology(path, args.topology)
    notes += _promotion_target(scenario, topology, list(args.set or []))
    recorded = run_recording(path, topology, scenario, notes,
                             None if args.quiet or args.json else progress_bar())
    written = write_ingest_report(recorded.result, recorded.page_rows, out_dir, inputs)
    if args.json:
        print(json.dumps(report.json_ready(recorded.result), indent=1))
    else:
        print(summary_text(recorded.result))
        print(f"report written to {written}/ ({', '.join(ingest_files())})")
    return 0


def recording_scenario(overrides: list[str]) -> dict[str, Any]:
    """The scenario `--set` asks for, keys that make no sense for a recording refused;
    demotion is off unless asked for (the recording says nothing of the top tier's other
    pages, so kswapd would demote on a guess)."""
    from runtime.scenario import load_scenario

    for assignment in overrides:
        key = assignment.split("=", 1)[0].strip()
        if key in FOR_RECORDINGS:
            continue
        for refused, why in NOT_FOR_RECORDINGS.items():
            if key == refused or key.startswith(refused + "."):
                raise InputError(f"ingest: --set {key}: not used for a recording ({why})")
    return load_scenario(None, ["demotion.enabled=false", *overrides])


def _topology(path: Path, option: str | None) -> tuple[Topology, list[str]]:
    """--topology's machine, else the recording's header's (said on stderr), else refused."""
    from runtime.perf.ingest import header_topology
    from runtime.perf.reader import PerfDataReader
    from runtime.topology import load_topology

    if option:
        return load_topology(Path(option)), [f"topology from {option}"]
    with PerfDataReader(path) as reader:
        found = header_topology(reader.header)
    if found is None:
        raise InputError(f"{path}: the recording has no NUMA_TOPOLOGY and MEM_TOPOLOGY to "
                         "say where its physical addresses are; pass --topology FILE (from "
                         "`ibs-mprof topology --capture` on the machine perf ran on)")
    topology, notes = found
    print(f"ibs-mprof: ingest: no --topology: {'; '.join(notes)}", file=sys.stderr)
    return topology, notes


def _promotion_target(scenario: dict[str, Any], topology: Topology,
                      overrides: list[str]) -> list[str]:
    """pghot.target_nid, when not set, is the first top-tier node of the recording's machine
    (node 0, the scenario's default, may be a CXL node there); the note says so."""
    top = [n.nid for n in topology.nodes if n.toptier]
    given = any(o.split("=", 1)[0].strip() == "pghot.target_nid" for o in overrides)
    if given or not top or scenario["pghot"]["target_nid"] in top:
        return []
    scenario["pghot"]["target_nid"] = top[0]
    return [f"pghot.target_nid {top[0]}: the first top-tier node"]


# --- the report ----------------------------------------------------------------------------------

PAGES_CSV = "pages.csv"
VIRTUAL_TXT = "virtual_heatmap.txt"
VIRTUAL_PNG = "virtual_heatmap.png"


def ingest_files() -> tuple[str, ...]:
    from runtime.report import REPORT_FILES

    return (*REPORT_FILES, PAGES_CSV, VIRTUAL_TXT, VIRTUAL_PNG)


def write_ingest_report(result: dict[str, Any], rows: list[tuple[object, ...]], out_dir: Path,
                        inputs: list[Path]) -> Path:
    """`run`'s report files (the summary saying it is a recording) and pages.csv, replacing
    out_dir as a whole or not at all."""
    from runtime import report
    from runtime.perf.pages import HEADER
    from runtime.perf.virtual_heat import plot_virtual_heatmap, virtual_heatmap_text
    from safeio.atomic_dir import replace_dir

    def fill(folder: Path) -> None:
        report.write_files(result, folder, summary_text(result))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
        (folder / PAGES_CSV).write_text(buf.getvalue(), encoding="utf-8")
        (folder / VIRTUAL_TXT).write_text(virtual_heatmap_text(result), encoding="utf-8")
        plot_virtual_heatmap(result, folder / VIRTUAL_PNG)

    return replace_dir(out_dir, report.REPORT_KIND, fill, inputs=inputs)


def summary_text(result: dict[str, Any]) -> str:
    """`run`'s summary with its header block (what was simulated) replaced by what was read:
    the recording, its samples and drops, the machine and what was assumed."""
    from runtime import report

    _, body = report.summary_text(result).split("\n\n", 1)
    return "\n".join(recording_header(result)) + "\n\n" + body


def recording_header(result: dict[str, Any]) -> list[str]:
    """The summary's first lines: the recording, what reached the model and what was dropped
    and why, then the machine, the kernel's settings and what was assumed."""
    from runtime.perf.ingest import DROP_WHY
    from runtime.report import LABEL_WIDTH

    ing, sc = result["ingest"], result["scenario"]
    prof, pg, drv = sc["profiler"], sc["pghot"], sc["driver"]
    drops = [f"{name} {count} ({DROP_WHY.get(name, '?')})" for name, count in
             ing["drops"].items() if count]
    lost = f"; the kernel lost {ing['lost_by_kernel']}" if ing["lost_by_kernel"] else ""
    nodes = "; ".join(f"node {n['nid']} {n['tier']} {n['memory']} {n['pages']} pages from PFN "
                      f"{n['pfn_start']:#x}" for n in result["machine"]["nodes"])
    window = pg["promote_freq_window_ms"]
    rows = [
        ("machine", f"{result['machine']['cpus']} CPUs; {nodes}"),
        ("recording", f"{ing['span_ms'] / 1000:.3f} s of samples; {ing['pages']} pages sampled "
                      f"({result['workload']['phases'][0]['hot_pages']} hot)"),
        ("profiler", f"l3_miss_only {_yes(prof['l3_miss_only'])}, exclude_kernel "
                     f"{_yes(prof['exclude_kernel'])}, exclude_user {_yes(prof['exclude_user'])}"
                     f"; driver {drv['variant']}, work latency {drv['work_latency_ms']:g} ms"),
        ("pghot", f"{pg['mode']} mode, threshold {pg['freq_threshold']} in "
                  f"{'the default window' if window is None else f'{window} ms'}, ready "
                  f"{pg['ready_rule']}; kmigrated every {sc['kmigrated']['sleep_ms']} ms"),
        ("assumed", "; ".join(ing["notes"])),
    ]
    lines = [f"ibs-mprof ingest: recording {ing['file']}: {ing['samples_read']} ibs_op samples "
             f"read, {ing['samples']} reached the model; dropped "
             f"{', '.join(drops) if drops else 'none'}{lost}"]
    for label, text in rows:
        lines += textwrap.wrap(text, 100, initial_indent=f"{label:<{LABEL_WIDTH}} ",
                               subsequent_indent=" " * (LABEL_WIDTH + 1))
    return lines


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
