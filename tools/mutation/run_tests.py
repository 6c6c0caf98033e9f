"""The test command of one mutant: the focused selection for the mutated module, interpreted.

Usage: python tools/mutation/run_tests.py MODULE_PATH   (or `all`: the union, mutmut's baseline)

Runs pytest with NUMBA_DISABLE_JIT=1 and the plugin in interpreted.py (why: see there), stops
at the first failure (-x), with the fast tests first so most mutants die in a second or two.
Exits 1 when the tests fail in any way (a mutant that breaks an import makes pytest exit 2,
which mutmut 2 would otherwise count as survived), 0 when they pass. A run past TIMEOUT_S
counts as killed (a hang) and is logged to .mutmut-timeouts with the mutated lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 90

# Engine-equality tests that run in about six seconds interpreted, together: two examples,
# windows off the bucket grid, rate-limited promotion, the ring, profiler and block tests.
_EQ = "tests/test_engines_equal.py::test_"
EQUAL = [f"{_EQ}every_example_runs_identically[default]",
         f"{_EQ}every_example_runs_identically[scan-resistance]",
         f"{_EQ}work_pending_across_a_block_boundary_drains_the_carried_ring",
         f"{_EQ}windows_that_are_not_multiples_of_a_bucket[default-1000]",
         f"{_EQ}windows_that_are_not_multiples_of_a_bucket[precise-3073]",
         f"{_EQ}rate_limited_promotion_below_the_free_space_short_cut",
         f"{_EQ}long_blocks_in_chunks", f"{_EQ}rings_with_many_pushes_per_work_latency",
         f"{_EQ}profiler_filters_without_l3_miss_only", f"{_EQ}lost_interrupt_stops_the_profiler",
         f"{_EQ}ring_full_drops_in_every_cycle",
         f"{_EQ}a_cpu_programmed_with_its_own_period"]
ENGINES = ["tests/test_mutation_kills.py", "tests/test_reference_engine.py",
           "tests/test_golden.py", "tests/test_analytic.py"]
PGHOT = ["tests/pghot/test_records.py", "tests/pghot/test_tunables.py",
         "tests/pghot/test_kmigrated.py", "tests/pghot/test_demotion.py",
         "tests/pghot/test_core.py"]
SELECTIONS: dict[str, list[str]] = {
    "runtime/driver.py": ["tests/test_driver.py", "tests/test_ring_msr.py",
                          "tests/test_profiler.py", "tests/test_injection.py", *ENGINES,
                          "tests/test_lackey.py", *EQUAL],
    "runtime/ring.py": ["tests/test_ring_msr.py", "tests/test_driver.py", *ENGINES, *EQUAL],
    "runtime/profiler.py": ["tests/test_profiler.py", "tests/test_driver.py", *ENGINES,
                            "tests/test_lackey.py", *EQUAL],
    "runtime/pghot/": [*PGHOT, *ENGINES, *EQUAL],
    "runtime/nodemap.py": ["tests/test_twins.py", "tests/test_topology.py",
                           "tests/test_memory.py", *PGHOT, *ENGINES, *EQUAL],
    "runtime/sections.py": ["tests/test_twins.py", "tests/test_memory.py", *PGHOT, *ENGINES,
                            *EQUAL],
    # NUMA balancing's clocks are where INITIAL_JIFFIES and the u32 ms wrap show
    "runtime/jiffies.py": ["tests/numab/test_policy.py", "tests/numab/test_scanner.py",
                           "tests/numab/test_pacing.py", *PGHOT, *ENGINES, *EQUAL],
    "runtime/sample_path.py": [*EQUAL, "tests/test_twins.py"],
}


def selection(module: str) -> list[str]:
    if module == "all":
        return [*dict.fromkeys(f for args in SELECTIONS.values() for f in args)]
    for prefix, args in SELECTIONS.items():
        if module.startswith(prefix):
            return args
    raise SystemExit(f"no test selection for {module}")


def main() -> int:
    module = sys.argv[1]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("IBS_MPROF_JIT_CACHE", str(ROOT / ".mutmut-jit"))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p",
               "tools.mutation.interpreted", "--no-header", "-o", "addopts=",
               *selection(module)]
    start = time.monotonic()
    try:
        code = subprocess.run(command, cwd=ROOT, env=env, timeout=TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        diff = subprocess.run(["git", "diff", "-U0", "--", module], cwd=ROOT,
                              capture_output=True, text=True).stdout
        with open(ROOT / ".mutmut-timeouts", "a") as log:
            log.write(f"# {module} after {time.monotonic() - start:.0f} s\n{diff}\n")
        return 1
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
