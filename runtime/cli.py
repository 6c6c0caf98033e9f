"""The `ibs-mprof` command line: argument parsing and the one-line error contract.

Every user error (bad spec, bad value, bad file) becomes one line on stderr and exit status 2;
`gen --check` differences exit 1. No traceback ever reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from runtime.choices import DRIVER_VARIANTS, ENGINES, INVARIANTS, SETUP_NAMES
from runtime.errors import InputError

DESCRIPTION = """\
Model what AMD's IBS Memory Profiler and Linux pghot/kmigrated hot-page promotion would do
for a workload on tiered memory (DRAM + CXL), check a driver's MSR handling against a model
of the proposed driver, and decode raw IBS register values."""

EXAMPLES = """\
examples:
  ibs-mprof run                                  the default scenario, report in ./ibs-mprof-out/
  ibs-mprof run examples/gups-shift.yaml --set profiler.period=4096 --out shift-4096
  ibs-mprof compare --setups numab2,pghot-hwhints   hint faults vs IBS on the default workload
  ibs-mprof sweep examples/sweep-gups-shift.yaml  period x threshold x 3 seeds on Dask
  ibs-mprof ingest perf.data                     a real IBS recording through pghot/kmigrated
  ibs-mprof decode IBS_MPROF_CTL 0xB0271         the fields of a raw register value
  ibs-mprof gen --check                          is generated/ up to date with spec/?
  ibs-mprof COMMAND --help                       the options of one command

Bad input of any kind is one line on stderr and exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2, naming the command (no second
    program-name prefix: the CLI adds "ibs-mprof: error: " once)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("ibs-mprof").strip()
        hint = f"`ibs-mprof {command + ' ' if command else ''}--help` lists the options"
        raise InputError(f"{command + ': ' if command else ''}{message} ({hint})")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ibs-mprof")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _cmd_gen(args: argparse.Namespace) -> int:
    import codegen
    from codegen.writer import check_out

    spec_dir = Path(args.spec) if args.spec else codegen.SPEC_DIR
    out_dir = Path(args.out) if args.out is not None else codegen.OUT_DIR
    if not args.check:
        out_dir = check_out(out_dir)  # before any work: never write where we may not
    try:
        if args.check:
            problems = codegen.check_generated(spec_dir, out_dir)
            for line in problems:
                print(line)
            if problems:
                print(f"generated/ is out of date: {len(problems)} file(s); run `ibs-mprof gen`",
                      file=sys.stderr)
                return 1
            print(f"{out_dir}: up to date with {spec_dir}")
            return 0
        changed = codegen.generate(spec_dir, out_dir)
    except codegen.SpecError as exc:
        for diag in exc.diagnostics:
            print(diag.at(spec_dir), file=sys.stderr)
        return 2
    print(f"{len(changed)} file(s) written to {out_dir}" + (": " + ", ".join(changed)
                                                            if changed else ""))
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from runtime import decode

    if args.perf_raw is not None:
        if args.register is not None:
            raise InputError("decode: give either REG VALUE or --perf-raw HEX, not both")
        caps, kind, values = decode.decode_perf_raw(decode.parse_hex_payload(args.perf_raw))
        if args.json:
            print(json.dumps(decode.perf_raw_json(caps, kind, values), indent=2))
        else:
            print(f"IBS {kind} sample, {len(values)} MSR values")
            print(decode.register_text(caps))
            for value in values:
                print(decode.register_text(value))
        return 0
    if args.register is None or args.value is None:
        raise InputError("decode: expected REG VALUE (e.g. IBS_MPROF_CTL 0xB0271) or --perf-raw")
    cls = decode.find_register(args.register)
    value = decode.decode_value(cls, decode.parse_int(args.value, "VALUE"))
    if args.json:
        print(json.dumps(decode.register_json(value), indent=2))
    else:
        print(decode.register_text(value))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from runtime import replay
    from runtime.topology import load_topology

    topology = load_topology(Path(args.topology)) if args.topology else None
    result = replay.replay(Path(args.samples), topology, args.drain_every, args.variant)
    print(replay.to_json(result) if args.json else replay.format_text(result))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from runtime import report
    from runtime.allocator import keep_freed_memory

    keep_freed_memory()
    from runtime.simulate import progress_bar, simulate

    scenario, inputs = _scenario_of(args)
    out_dir = report.check_report_dir(args.out, inputs)
    progress = None if args.quiet or args.json else progress_bar()
    if args.sample_log:
        written = _run_with_sample_log(scenario, out_dir, inputs, progress)
        result = json.loads((written[0].parent / "report.json").read_text())
    else:
        result = simulate(scenario, progress)
        written = report.write_report(result, out_dir, inputs)
    if args.json:
        print(json.dumps(report.json_ready(result), indent=1))
    else:
        print(report.summary_text(result))
        print(f"report written to {written[0].parent}/ "
              f"({', '.join(path.name for path in written)})")
    return 0


def _run_with_sample_log(scenario: dict[str, Any], out_dir: Path, inputs: Sequence[Path],
                         progress: Any) -> list[Path]:
    """The run with every pghot call streamed to samples.csv as it happens (in a hidden
    folder of ours beside --out, moved into the report folder with the rest)."""
    from runtime import report
    from runtime.metrics import SAMPLE_LOG_HEADER
    from runtime.simulate import simulate
    from safeio.owned import fresh_dir, remove_owned

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    aside = fresh_dir(out_dir.parent, f".{out_dir.name}.samples-")
    try:
        path = aside / "samples.csv"
        with path.open("w", encoding="utf-8") as log:
            log.write(SAMPLE_LOG_HEADER)
            result = simulate(scenario, progress, sample_log=log)
        return report.write_report(result, out_dir, inputs, {"samples.csv": path})
    finally:
        remove_owned(aside)


def _scenario_of(args: argparse.Namespace) -> tuple[dict[str, Any], list[Path]]:
    """The scenario run and compare take (file, --set, --seed, --engine), and the files it
    reads."""
    from runtime.scenario import load_scenario

    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.engine is not None:
        overrides.append(f"engine={args.engine}")
    scenario = load_scenario(Path(args.scenario) if args.scenario else None, overrides)
    return scenario, scenario_inputs(args.scenario, scenario)


def _cmd_compare(args: argparse.Namespace) -> int:
    from runtime import compare
    from runtime.allocator import keep_freed_memory

    keep_freed_memory()
    from runtime.simulate import progress_bar, simulate

    setups = compare.parse_setups(args.setups)
    scenario, inputs = _scenario_of(args)
    out_dir = compare.check_compare_dir(args.out, inputs)
    results = compare.compare(scenario, setups, simulate,
                              None if args.quiet or args.json else progress_bar())
    written = compare.write_comparison(results, scenario, out_dir, inputs)
    if args.json:
        print(compare.comparison_json(results), end="")
    else:
        print(compare.table_text(compare.rows_of(results), scenario))
        print(f"comparison written to {written}/ ({', '.join(compare.COMPARE_FILES)}, and "
              f"a report per setup in {', '.join(f'{name}/' for name in results)})")
    return 0


def _scenario_arguments(parser: argparse.ArgumentParser, out: str, out_help: str) -> None:
    parser.add_argument("scenario", nargs="?", metavar="SCENARIO.yaml",
                        help="scenario file (default: the embedded GUPS hot-set scenario)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a scenario key, e.g. pghot.freq_threshold=1 "
                        "(repeatable)")
    parser.add_argument("--out", default=out, metavar="DIR", help=out_help)
    parser.add_argument("--seed", type=int_option(0, SEED_MAX), metavar="N",
                        help="random seed (same as --set seed=N)")
    parser.add_argument("--engine", choices=ENGINES,
                        help="numpy fast engine (default) or the event-by-event reference")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def scenario_inputs(path: str | None, scenario: dict[str, Any]) -> list[Path]:
    """The files a run reads: its output folder must never hold them."""
    inputs = [Path(path)] if path else []
    trace = scenario.get("workload", {}).get("trace")
    if trace:
        inputs.append(Path(trace))
    return inputs


def _cmd_bench(args: argparse.Namespace) -> int:
    from runtime import bench
    from runtime.allocator import keep_freed_memory

    keep_freed_memory()  # what `ibs-mprof run` sets, so the figures are what a run gets

    result = bench.bench(quick=args.quick, repeat=args.repeat, flat=args.flat)
    print(json.dumps(result, indent=1) if args.json else bench.format_text(result))
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from runtime import probe

    report = probe.probe(args.cpu)
    print(json.dumps(report, indent=2) if args.json else probe.format_text(report))
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from runtime import explore

    return explore.command(args)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from runtime import sweep

    return sweep.command(args)


def _cmd_topology(args: argparse.Namespace) -> int:
    from runtime.perf import cli as perf_cli

    return perf_cli.command(args)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from runtime.perf import cli as perf_cli

    return perf_cli.ingest_command(args)


def int_option(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a decimal or 0x-hex integer (ASCII digits only) in low..high; the
    message names the rule, and argparse adds the option's name."""
    def parse(text: str) -> int:
        from runtime.decode import parse_int  # here, not at parser build: no model loaded

        try:
            value = parse_int(text, "value")
        except InputError as exc:  # its rule (digits, length), without the "value: " prefix
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None
        if value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


BENCH_REPEAT_MAX = 100
"""More repeats than this only tell the machine's noise more precisely, at hours of cost."""
SEED_MAX = (1 << 63) - 1
"""Largest seed: what scenario's `seed` accepts (numpy's generators take any non-negative)."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ibs-mprof", description=DESCRIPTION, epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ibs-mprof {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND", title="commands")
    gen = sub.add_parser("gen", help="regenerate generated/ from spec/ (or --check it)",
                         description="Render the register spec into typed Python accessors, "
                         "a C header and a register reference. Writes only into an absent or "
                         "empty folder, or one that gen wrote itself.")
    gen.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 and list stale, hand-edited or left-over files")
    gen.add_argument("--spec", metavar="DIR",
                     help="spec folder (default: the spec this package was built from)")
    gen.add_argument("--out", metavar="DIR",
                     help="output folder (default: this package's generated/)")
    gen.set_defaults(func=_cmd_gen)
    dec = sub.add_parser("decode", help="decode a raw register value or a perf raw IBS sample",
                         description="Decode a raw value of any register in the spec, or the "
                         "PERF_SAMPLE_RAW payload of a perf IBS sample, with the generated "
                         "accessors.")
    dec.add_argument("register", nargs="?", metavar="REG",
                     help="register name from the spec, any case (e.g. IBS_MPROF_CTL)")
    dec.add_argument("value", nargs="?", metavar="VALUE", help="raw value, decimal or 0x-hex")
    dec.add_argument("--perf-raw", metavar="HEX",
                     help="PERF_SAMPLE_RAW payload of an IBS sample: the caps word, then the MSR "
                     "values, as hex bytes")
    dec.add_argument("--json", action="store_true", help="print JSON instead of a table")
    dec.set_defaults(func=_cmd_decode)
    rep = sub.add_parser("replay", help="drive the driver's NMI path with MSR values from a CSV",
                         description="Feed recorded memory-profiler MSR contents through the "
                         "model of the seed driver's NMI handler, ring and work item, and print "
                         "what it records (conformance with the seed driver).")
    rep.add_argument("samples", metavar="SAMPLES.csv",
                     help="header cpu,time,ctl,data2,data3,linaddr,phyaddr; one NMI per row")
    rep.add_argument("--topology", metavar="FILE",
                     help="YAML topology of nodes, tiers and CPUs (default: 2 nodes, 8 CPUs)")
    rep.add_argument("--drain-every", type=int_option(1), default=1, metavar="N",
                     help="run a CPU's queued work after N of its rows (default 1)")
    rep.add_argument("--variant", choices=DRIVER_VARIANTS, default="v7",
                     help="driver model: the seed as posted (v7, default) or with the "
                     "post-v7 repairs (fixed)")
    rep.add_argument("--json", action="store_true", help="print JSON instead of text")
    rep.set_defaults(func=_cmd_replay)
    run = sub.add_parser("run", help="simulate a workload on a tiered machine and judge "
                         "IBS-driven promotion",
                         description="Simulate a workload on a tiered machine through the IBS "
                         "Memory Profiler, its driver, pghot and kmigrated, and report how well "
                         "hot pages reach the fast tier, how fast, and at what cost.")
    _scenario_arguments(run, "ibs-mprof-out", "report folder (default ./ibs-mprof-out/): "
                        "created, or replaced as a whole if it is an earlier report of ours; "
                        "any other folder is refused")
    run.add_argument("--json", action="store_true", help="print report.json to stdout")
    run.add_argument("--sample-log", action="store_true", help="also write samples.csv: every "
                     "pghot_record_access call (sample and drain time, CPU, PFN, page, READY, "
                     "source), streamed to disk as the run goes")
    run.set_defaults(func=_cmd_run)
    cmp = sub.add_parser("compare", help="one workload under each promotion setup (NUMA "
                         "balancing, pghot with hint faults, IBS, both), side by side",
                         description="Run the same workload and seed under each promotion "
                         "setup and print one table: promotions, FTHR vs oracle, time to "
                         "detect and promote, useful vs wasted, events per second, modelled "
                         "CPU overhead by cause, verdict; plus FTHR over time per setup and "
                         "each setup's full report.")
    _scenario_arguments(cmp, "ibs-mprof-compare", "comparison folder (default "
                        "./ibs-mprof-compare/): created, or replaced as a whole if it is an "
                        "earlier comparison of ours; any other folder is refused")
    cmp.add_argument("--setups", metavar="A,B,...",
                     help=f"setups to compare, in this order (default all: "
                     f"{', '.join(SETUP_NAMES)})")
    cmp.add_argument("--json", action="store_true", help="print comparison.json to stdout")
    cmp.set_defaults(func=_cmd_compare)
    ben = sub.add_parser("bench", help="throughput of both engines, as ratios, and the scale "
                         "targets", description="Time both engines on fixed workloads and print "
                         "samples per second, the real-time factor and the fast/reference "
                         "ratio; then the whole run command on a 64-CPU host, a 256 GiB "
                         "region's build and bytes per page, a 1 TiB tier's records.")
    ben.add_argument("--json", action="store_true", help="print JSON")
    ben.add_argument("--quick", action="store_true", help="only the first case")
    ben.add_argument("--repeat", type=int_option(1, BENCH_REPEAT_MAX), default=3, metavar="N",
                     help=f"runs per measurement, 1..{BENCH_REPEAT_MAX}; the fastest counts "
                     "(default 3)")
    ben.add_argument("--flat", action="store_true", help="also the peak RSS of a 600 s run of "
                     "the 64-CPU host against 10 s (minutes of wall time)")
    ben.set_defaults(func=_cmd_bench)
    probe = sub.add_parser("probe", help="decode this host's IBS CPUID leaves",
                           description="Read this host's IBS CPUID leaves (/dev/cpu/N/cpuid) "
                           "and say plainly what is and is not supported.")
    probe.add_argument("--cpu", type=int_option(0), default=0, metavar="N",
                       help="CPU to ask (default 0)")
    probe.add_argument("--json", action="store_true", help="print JSON")
    probe.set_defaults(func=_cmd_probe)
    from runtime import explore

    exp = sub.add_parser("explore", help="explore interleavings of the driver's NMI, irq_work, "
                         "work and CPU hotplug steps for the shortest one that breaks an "
                         f"invariant ({', '.join(INVARIANTS)})",
                         description="Explore interleavings of the driver model's NMI handler, "
                         "irq_work, work item and CPU hotplug, exhaustively or at random, and "
                         "print the shortest schedule that loses, strands or misroutes a "
                         "sample.")
    explore.add_arguments(exp)
    exp.set_defaults(func=_cmd_explore)
    from runtime import sweep

    swp = sub.add_parser("sweep", help="run a grid of scenarios (axes of any scenario key, "
                         "seeds) on Dask and compare them: tables, plots, Pareto fronts",
                         description="Run every point of a grid of scenarios on Dask "
                         "distributed (a local cluster, or an existing one), keep each "
                         "point's result as it finishes (a rerun resumes), and write one row "
                         "per point, plots against each axis and the trade-off plot.")
    sweep.add_arguments(swp)
    swp.set_defaults(func=_cmd_sweep)
    from runtime.perf import cli as perf_cli

    topo = sub.add_parser("topology", help="print this machine's memory topology as the YAML "
                          "--topology reads", description="Read /sys/devices/system/node "
                          "(CPUs, memory blocks, meminfo) and the memory tiers, and print the "
                          "topology YAML that `ingest --topology` and `replay --topology` read.")
    perf_cli.add_arguments(topo)
    topo.set_defaults(func=_cmd_topology)
    ing = sub.add_parser("ingest", help="run a real `perf record` IBS recording through the "
                         "driver's NMI path, the ring and pghot/kmigrated", description="Read "
                         "a perf.data of raw IBS op samples and feed each sample, at its own "
                         "time and CPU, through the profiler's filters, the driver, the ring, "
                         "pghot and kmigrated; report what would have been promoted, and "
                         "when, against the recording's own per-page miss counts.")
    perf_cli.add_ingest_arguments(ing)
    ing.set_defaults(func=_cmd_ingest)
    return parser


ONE_BLAS_THREAD = ("OPENBLAS_NUM_THREADS", "1")
"""Set for the process unless the user set it: numpy's OpenBLAS otherwise starts a thread per
core and, after each BLAS call (matplotlib's transforms make them), spins them on the other
cores: 0.2 s of a second core in a 1.4 s run (and each of a sweep's workers would start
its own).
Read when numpy is first imported, which main() is always before."""


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault(*ONE_BLAS_THREAD)
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except InputError as exc:
        print(f"ibs-mprof: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:  # Ctrl-C: no traceback; what writes output is atomic
        print("ibs-mprof: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
