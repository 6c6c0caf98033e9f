#!/usr/bin/env bash
# The mutation run of tools/mutation/README.md, in one command:
#   tools/mutation/run.sh [comma-separated module paths]   (default: every target, in order)
# Needs the `mutation` extra (pip install -e '.[mutation]'). mutmut 2 mutates the files in
# place, one mutant at a time, and restores each: run it on a clean checkout and let it end.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
TARGETS="runtime/ring.py,runtime/driver.py,runtime/pghot/window.py,runtime/pghot/default_mode.py"
TARGETS+=",runtime/pghot/precise_mode.py,runtime/pghot/records.py,runtime/sample_path.py"
TARGETS+=",runtime/pghot/core.py,runtime/pghot/kmigrated.py,runtime/profiler.py"
TARGETS+=",runtime/nodemap.py,runtime/sections.py,runtime/jiffies.py"
if ! git diff --quiet -- runtime; then
  echo "runtime/ has uncommitted changes; mutmut mutates it in place: commit or stash first" >&2
  exit 1
fi
export PYTHONPATH="$PWD/tools/mutation${PYTHONPATH:+:$PYTHONPATH}"  # mutmut_config.py
export IBS_MPROF_JIT_CACHE="${IBS_MPROF_JIT_CACHE:-$PWD/.mutmut-jit}"
"$PY" -c 'from mutmut.__main__ import climain; climain()' run \
  --paths-to-mutate "${1:-$TARGETS}" --tests-dir tests --no-progress --simple-output \
  --runner "$PY tools/mutation/run_tests.py all" || true
"$PY" -c 'from mutmut.__main__ import climain; climain()' results
