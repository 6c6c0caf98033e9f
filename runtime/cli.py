"""The `ibs-mprof` command line: argument parsing and the one-line error contract.

Every user error (bad spec, bad value, bad file) becomes one line on stderr and exit status 2;
`gen --check` differences exit 1. No traceback ever reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from runtime.choices import DRIVER_VARIANTS, ENGINES, INVARIANTS
from runtime.errors import InputError


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message}")


def _cmd_gen(args: argparse.Namespace) -> int:
    import codegen

    spec_dir = Path(args.spec) if args.spec else codegen.SPEC_DIR
    out_dir = Path(args.out) if args.out else codegen.OUT_DIR
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
            print(f"{spec_dir / diag.file}:{diag.line}: {diag.rule}: {diag.message}",
                  file=sys.stderr)
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
    from runtime.scenario import load_scenario
    from runtime.simulate import progress_bar, simulate

    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.engine is not None:
        overrides.append(f"engine={args.engine}")
    scenario = load_scenario(Path(args.scenario) if args.scenario else None, overrides)
    report.check_out_dir(Path(args.out))
    result = simulate(scenario, None if args.quiet or args.json else progress_bar())
    out_dir = Path(args.out)
    report.write_report(result, out_dir)
    if args.json:
        print(json.dumps(report.json_ready(result), indent=1))
    else:
        print(report.summary_text(result))
        print(f"report written to {out_dir}/ (report.json, summary.txt, timeline.csv, "
              "heatmap.txt, fthr.png, heatmap.png, ttd_cdf.png)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from runtime import bench
    from runtime.allocator import keep_freed_memory

    keep_freed_memory()  # what `ibs-mprof run` sets, so the figures are what a run gets

    result = bench.bench(quick=args.quick, repeat=args.repeat)
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


def _positive_int(text: str) -> int:
    from runtime.decode import parse_int

    value = parse_int(text, "value")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ibs-mprof", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    gen = sub.add_parser("gen", help="regenerate generated/ from spec/ (or --check it)")
    gen.add_argument("--check", action="store_true", help="exit 1 if generated/ is out of date")
    gen.add_argument("--spec", help="spec folder (default: the project's spec/)")
    gen.add_argument("--out", help="output folder (default: the project's generated/)")
    gen.set_defaults(func=_cmd_gen)
    dec = sub.add_parser("decode", help="decode a raw register value or a perf raw IBS sample")
    dec.add_argument("register", nargs="?", metavar="REG", help="register name from spec/")
    dec.add_argument("value", nargs="?", metavar="VALUE", help="decimal or 0x-hex value")
    dec.add_argument("--perf-raw", metavar="HEX", help="PERF_SAMPLE_RAW payload of an IBS sample")
    dec.add_argument("--json", action="store_true", help="print JSON")
    dec.set_defaults(func=_cmd_decode)
    rep = sub.add_parser("replay", help="drive the driver's NMI path with MSR values from a CSV")
    rep.add_argument("samples", metavar="SAMPLES.csv",
                     help="header cpu,time,ctl,data2,data3,linaddr,phyaddr; one NMI per row")
    rep.add_argument("--topology", metavar="FILE", help="YAML topology (default: 2 nodes, 8 CPUs)")
    rep.add_argument("--drain-every", type=_positive_int, default=1, metavar="N",
                     help="run a CPU's queued work after N of its rows (default 1)")
    rep.add_argument("--variant", choices=DRIVER_VARIANTS, default="v7")
    rep.add_argument("--json", action="store_true", help="print JSON")
    rep.set_defaults(func=_cmd_replay)
    run = sub.add_parser("run", help="simulate a workload on a tiered machine and judge "
                         "IBS-driven promotion")
    run.add_argument("scenario", nargs="?", metavar="SCENARIO.yaml",
                     help="scenario file (default: the embedded GUPS hot-set scenario)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a scenario key, e.g. pghot.freq_threshold=1 (repeatable)")
    run.add_argument("--out", default="ibs-mprof-out", metavar="DIR",
                     help="report folder, replaced atomically (default ./ibs-mprof-out/)")
    run.add_argument("--seed", type=int, help="random seed (same as --set seed=N)")
    run.add_argument("--engine", choices=ENGINES,
                     help="numpy fast engine (default) or the event-by-event reference")
    run.add_argument("--json", action="store_true", help="print report.json to stdout")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)
    ben = sub.add_parser("bench", help="throughput of both engines, as ratios")
    ben.add_argument("--json", action="store_true", help="print JSON")
    ben.add_argument("--quick", action="store_true", help="only the first case")
    ben.add_argument("--repeat", type=_positive_int, default=3, metavar="N",
                     help="runs per measurement; the fastest counts (default 3)")
    ben.set_defaults(func=_cmd_bench)
    probe = sub.add_parser("probe", help="decode this host's IBS CPUID leaves")
    probe.add_argument("--cpu", type=int, default=0, help="CPU to ask (default 0)")
    probe.add_argument("--json", action="store_true", help="print JSON")
    probe.set_defaults(func=_cmd_probe)
    from runtime import explore

    exp = sub.add_parser("explore", help="explore interleavings of the driver's NMI, irq_work, "
                         "work and CPU hotplug steps for the shortest one that breaks an "
                         f"invariant ({', '.join(INVARIANTS)})")
    explore.add_arguments(exp)
    exp.set_defaults(func=_cmd_explore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except InputError as exc:
        print(f"ibs-mprof: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
