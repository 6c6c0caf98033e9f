"""`ibs-mprof explore`: v7's lost-sample races are found with the shortest schedule, the fixed
driver explores clean to the same bound, and --ring sets the model's ring size."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from generated.ibs_mprof import IBS_NR_SAMPLES
from runtime.cli import build_parser
from runtime.explore.model import Machine, Step
from runtime.explore.output import describe
from runtime.explore.search import Explorer, bfs, ddmin, explore
from tests.conftest import ROOT, run_cli

BOUND = ("--cpus", "2", "--samples", "2", "--depth", "12")
PROGRESS = re.compile(r"explore: \d+ s, .*\(estimate: at most [\d,]+ states\)")


def quiet_stderr(stderr: str) -> str:
    """stderr without progress lines (a loaded machine may take over a second for any run)."""
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not PROGRESS.fullmatch(line.strip()))


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("explore", *args, "--json")
    assert quiet_stderr(result.stderr) == "", result.stderr
    return result.returncode, json.loads(result.stdout)


def kinds(violation: dict[str, Any]) -> list[str]:
    return [f"{s['kind']}({s['cpu']})" for s in violation["steps"]]


def test_v7_strands_a_sample_across_cpu_offline_in_three_steps() -> None:
    result = run_cli("explore", "--variant", "v7", *BOUND)
    assert result.returncode == 1, result.stderr
    text = result.stdout
    assert "VIOLATION of stranded: shortest schedule, 3 step(s)" in text
    assert "  1. cpu1: NMI, sample pfn 0x100000 pushed to cpu1's ring (1/149), pending=1, " \
        "irq_work queued" in text
    assert "  3. cpu1 goes offline (teardown): profiler disabled; ring keeps 1 sample, pending " \
        "stays 1" in text
    assert "work for cpu1 runs on cpu0 (cpu1 is offline): its drain loop pops cpu0's ring " \
        "(the runner's, not cpu1's): empty" in text
    assert "clears cpu0's pending flag (was 0); cpu1's stays 1" in text
    assert text.rstrip().endswith("stranded for good")
    code, data = run_json("--variant", "v7", *BOUND)
    violation = data["violation"]
    assert code == 1 and violation["invariant"] == "stranded" and violation["length"] == 3
    assert kinds(violation) == ["nmi(1)", "irq_work(1)", "offline(1)", "work_drain(1)",
                                "work_clear(1)", "online(1)"]
    assert [s["settle"] for s in violation["steps"]] == [False] * 3 + [True] * 3
    assert data["depth_reached"] == 3 and data["states"] > 0 and data["schedules"] > 0


def test_v7_pending_flag_window_between_drain_and_clear() -> None:
    code, data = run_json("--variant", "v7", *BOUND, "--no-hotplug")
    violation = data["violation"]
    assert code == 1 and violation["length"] == 4
    assert kinds(violation) == ["nmi(0)", "irq_work(0)", "work_drain(0)", "nmi(0)",
                                "work_clear(0)"]
    assert "between its drain loop and clearing the pending flag" in violation["steps"][3]["text"]
    assert "pending already 1: no irq_work queued" in violation["steps"][3]["text"]
    assert violation["message"].startswith("sample pfn 0x100001 accepted by cpu0 is never "
                                           "recorded")
    assert "waits for the next sample on cpu0" in violation["message"]


def test_v7_work_on_another_cpu_pops_an_online_cpus_ring() -> None:
    result = explore("v7", 2, 2, 12, target="owner-pop")
    cex = result.counterexample
    assert cex is not None and cex.invariant == "owner-pop" and cex.prefix_length == 5
    assert [line.step for line in cex.lines] == [
        Step("nmi", 0), Step("nmi", 1), Step("irq_work", 1), Step("offline", 1),
        Step("work_drain", 1)]
    assert "the work for cpu1, running on cpu0, popped sample pfn 0x100000 from cpu0's ring" \
        in cex.message


def test_v7_never_loses_or_duplicates_outright_it_strands() -> None:
    result = explore("v7", 2, 2, 30, target="conservation")
    assert result.counterexample is None and result.exhausted


def test_fixed_explores_clean_to_the_same_bounds() -> None:
    for extra in ((), ("--no-hotplug",), ("--cpus", "3")):
        code, data = run_json("--variant", "fixed", *BOUND, *extra)
        assert code == 0 and data["violation"] is None, (extra, data["violation"])
        # The bound covers every reachable state: the search ran out of new states first.
        assert data["exhausted"] and data["states"] >= 50 and data["schedules"] > 10 ** 6
    result = run_cli("explore", "--variant", "fixed", *BOUND)
    assert result.returncode == 0
    assert "no violation: conservation, owner-only pops and no stranded sample hold" \
        in result.stdout


def test_ring_size_is_a_model_parameter_and_ring_full_is_a_named_drop() -> None:
    code, small = run_json("--variant", "fixed", "--ring", "3", "--samples", "3", "--depth", "10")
    assert code == 0 and small["violation"] is None
    assert small["ring_slots"] == 3 and small["ring_capacity"] == 2
    assert small["ring_source"] == "--ring"
    assert small["drops"]["ring_full"] > 0
    code, full = run_json("--variant", "fixed", "--samples", "3", "--depth", "10")
    assert code == 0 and full["ring_slots"] == IBS_NR_SAMPLES and full["drops"] == {}
    assert full["ring_source"] == "spec"
    # v7 drops silently (no counter), but the drop is still named ring_full, not a loss.
    code, v7 = run_json("--variant", "v7", "--ring", "2", "--samples", "2", "--no-hotplug",
                        "--invariant", "conservation")
    assert code == 0 and v7["drops"]["ring_full"] > 0 and v7["exhausted"]


def test_ring_full_step_reads_as_a_drop() -> None:
    result = run_cli("explore", "--variant", "v7", "--ring", "2", "--samples", "2", "--cpus",
                     "2", "--no-hotplug")
    assert result.returncode == 1
    assert (f"ring 2 slots (1 usable, set by --ring; the spec's IBS_NR_SAMPLES is "
            f"{IBS_NR_SAMPLES})") in result.stdout
    assert "drops reached (named, never accepted, not a loss): ring_full" in result.stdout


def test_ring_needs_no_spec_copy_and_runs_from_an_installed_layout(tmp_path: Path) -> None:
    """--ring works where only the wheel's packages are (no spec/ beside them): the old
    copy-spec-and-regenerate path died there with a traceback."""
    pkg = tmp_path / "site"
    for name in ("codegen", "generated", "runtime", "safeio"):  # pyproject's packages
        shutil.copytree(ROOT / name, pkg / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    result = run_cli("explore", "--variant", "fixed", "--ring", "2", "--samples", "2",
                     "--depth", "6", "--json", cwd=tmp_path, pythonpath=pkg)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ring_slots"] == 2 and data["drops"]["ring_full"] > 0


def test_a_smaller_ring_changes_only_the_ring() -> None:
    """Every ring above samples + 1 slots never fills: the same search as the spec's ring."""
    spec = explore("fixed", 2, 2, 8)
    for slots in (4, 9, IBS_NR_SAMPLES):
        other = explore("fixed", 2, 2, 8, ring_slots=slots)
        assert (other.states, other.transitions, other.schedules) == \
            (spec.states, spec.transitions, spec.schedules) and other.drops == {}
    tight = explore("fixed", 2, 2, 8, ring_slots=2)
    assert tight.drops["ring_full"] > 0 and tight.states != spec.states


def test_random_mode_is_reproducible_and_minimises_to_the_shortest() -> None:
    code, first = run_json("--variant", "v7", "--random", "50", "--seed", "1")
    _, again = run_json("--variant", "v7", "--random", "50", "--seed", "1")
    first.pop("elapsed_s"), again.pop("elapsed_s")
    assert code == 1 and first == again
    violation = first["violation"]
    assert violation["found_length"] > violation["length"] == 3
    assert violation["minimised"] == "bfs" and first["mode"] == "random"
    code, fixed = run_json("--variant", "fixed", "--cpus", "3", "--random", "100", "--seed", "1")
    assert code == 0 and fixed["violation"] is None and fixed["schedules"] == 100


def test_snapshot_restore_round_trip() -> None:
    explorer = Explorer("v7", 2, 2, target="conservation")
    bfs(explorer, 30)
    machine = explorer.machine
    for state in explorer.quiet_cache:
        machine.restore(state)
        again = machine.snapshot()
        assert again == state and [c.msr for c in again.cpus] == [c.msr for c in state.cpus]


def test_ddmin_keeps_a_failing_one_minimal_subsequence() -> None:
    steps = [Step("nmi", i % 3) for i in range(12)]

    def fails(candidate: list[Step]) -> bool:
        return steps[3] in candidate and steps[7] in candidate

    assert ddmin(list(steps), fails) == [steps[3], steps[7]]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["--variant", "fixed", "--cpus", "4"], ["--variant", "fixed", "--ring", "1"],
                 ["--variant", "fixed", "--ring", str(IBS_NR_SAMPLES + 1)],
                 ["--variant", "fixed", "--seed", "3"], ["--variant", "v8"],
                 ["--variant", "fixed", "--depth", "0"], ["--variant", "fixed", "--ring", "x"],
                 ["--variant", "fixed", "--samples", "99"], ["--cpus", "2"]):
        result = run_cli("explore", *args, cwd=tmp_path)
        assert result.returncode == 2 and result.stdout == "", args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
    result = run_cli("explore", "--variant", "fixed", "--ring", "4096")
    assert result.stderr == (f"ibs-mprof: error: explore: --ring must be in 2..{IBS_NR_SAMPLES} "
                             f"(one slot stays empty; {IBS_NR_SAMPLES} is the spec's "
                             "IBS_NR_SAMPLES), got 4096\n")


def test_a_ring_full_drop_reads_as_a_named_drop() -> None:
    for variant, note in (("v7", "(v7: silently, no counter)"),
                          ("fixed", "(counted in hwhint_dropped_events)")):
        machine = Machine(variant, 2, 2, hotplug=False, ring_slots=2)
        first = machine.apply(Step("nmi", 0))
        assert first.outcome == "pushed"
        before = machine.snapshot()
        result = machine.apply(Step("nmi", 0))
        text = describe(variant, machine.capacity, before, machine.snapshot(), result)
        assert text == ("cpu0: NMI, sample pfn 0x100001 dropped: cpu0's ring is full (1/1) -> "
                        f"ring_full {note}")


def test_every_explore_option_says_what_it_does() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    explore_parser = sub.choices["explore"]
    options = [a for a in explore_parser._actions if a.dest != "help"]
    assert {a.dest for a in options} == {"variant", "cpus", "ring", "samples", "depth", "random",
                                         "seed", "invariant", "no_hotplug", "json"}
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS and len(action.help) > 20, \
            action.dest


def test_the_parser_loads_no_model() -> None:
    """`ibs-mprof --help` stays instant: building the parser imports neither numpy nor the
    generated accessors (explore's options live apart from its model)."""
    code = ("import sys; from runtime.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'generated.ibs_mprof', 'runtime.explore.model') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_hidden_expect_ring_option_is_gone() -> None:
    result = run_cli("explore", "--variant", "fixed", "--expect-ring", "3")
    assert result.returncode == 2 and "unrecognized arguments: --expect-ring" in result.stderr


def test_schedules_are_every_step_sequence_up_to_the_depth() -> None:
    """The level-by-level count over the state graph equals enumerating every schedule."""
    def enumerate_all(machine: Machine, left: int) -> int:
        steps = machine.enabled()
        if left == 0 or not steps:
            return 1
        state = machine.snapshot()
        total = 0
        for step in steps:
            machine.restore(state)
            machine.apply(step)
            total += enumerate_all(machine, left - 1)
        machine.restore(state)
        return total

    for ncpus, samples, depth, hotplug in ((2, 1, 7, True), (2, 2, 6, False), (3, 1, 4, True)):
        result = explore("fixed", ncpus, samples, depth, hotplug=hotplug)
        assert result.counterexample is None
        assert result.schedules == enumerate_all(Machine("fixed", ncpus, samples, hotplug), depth)
