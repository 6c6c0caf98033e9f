"""The reader against files the real `perf` tool wrote on this machine, checked with perf's
own `perf script` and `perf report -D` output of the same file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from runtime.perf.reader import PerfDataReader

PERF = shutil.which("perf")
pytestmark = pytest.mark.skipif(PERF is None, reason="perf is not on PATH (Debian: apt-get "
                                "install linux-perf)")
LOOP = "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done"


def perf(*args: str) -> subprocess.CompletedProcess[str]:
    assert PERF is not None
    return subprocess.run([PERF, *args], capture_output=True, text=True, timeout=120)


def record(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "perf.data"
    done = perf("record", "-q", "-o", str(out), *args)
    if done.returncode != 0 or not out.exists():
        pytest.skip(f"perf record {' '.join(args[:3])} failed here: "
                    f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return out


def ours(path: Path) -> dict[str, np.ndarray]:
    cols: dict[str, list[np.ndarray]] = {}
    with PerfDataReader(path, block_bytes=1 << 16) as reader:
        for block in reader.blocks():
            s = block.samples
            cols.setdefault("offset", []).append(block.file_offset + s.at)
            for name in ("pid", "tid", "cpu", "time", "ip", "raw_size"):
                cols.setdefault(name, []).append(getattr(s, name))
            cols.setdefault("common_pid", []).append(np.array(
                [int.from_bytes(block.buf[a + 4:a + 8].tobytes(), "little", signed=True)
                 if n >= 8 else -1 for a, n in zip(s.raw_at.tolist(), s.raw_size.tolist(),
                                                   strict=True)], dtype=np.int64))
    return {k: np.concatenate(v) for k, v in cols.items()}


def test_software_event_samples_equal_perf_script(tmp_path: Path) -> None:
    path = record(tmp_path, "-e", "cpu-clock", "-c", "100000", "--sample-cpu", "--", "sh",
                  "-c", LOOP)
    script = perf("script", "-i", str(path), "-F", "pid,tid,cpu,time,ip", "--ns")
    assert script.returncode == 0, script.stderr
    line = re.compile(r"^\s*(\d+)/(\d+)\s+\[(\d+)\]\s+(\d+)\.(\d{9}):\s+([0-9a-f]+)")
    theirs = sorted((int(m[1]), int(m[2]), int(m[3]), int(m[4]) * 10**9 + int(m[5]),
                     int(m[6], 16)) for m in map(line.match, script.stdout.splitlines()) if m)
    got = ours(path)
    mine = sorted(zip(got["pid"].tolist(), got["tid"].tolist(), got["cpu"].tolist(),
                      got["time"].tolist(), got["ip"].tolist(), strict=True))
    assert len(theirs) > 5 and mine == theirs


def test_tracepoint_raw_payloads_sit_where_perf_report_says(tmp_path: Path) -> None:
    path = record(tmp_path, "-e", "sched:sched_switch", "-R", "-a", "--", "sh", "-c",
                  LOOP + "; sleep 0.05")
    dump = perf("report", "-D", "-i", str(path))
    assert dump.returncode == 0, dump.stderr
    sample_line = re.compile(r"^(\d+) (\d+) 0x([0-9a-f]+) \[0x([0-9a-f]+)\]: "
                             r"PERF_RECORD_SAMPLE\(.*\): (-?\d+)/(-?\d+):")
    theirs = sorted((int(m[3], 16), int(m[1]), int(m[2]), int(m[5]), int(m[6]))
                    for m in map(sample_line.match, dump.stdout.splitlines()) if m)
    got = ours(path)
    mine = sorted(zip(got["offset"].tolist(), got["cpu"].tolist(), got["time"].tolist(),
                      got["pid"].tolist(), got["tid"].tolist(), strict=True))
    assert len(theirs) > 2 and mine == theirs
    # the RAW payload is the tracepoint's record: its common_pid is the switching task
    assert (got["raw_size"] > 8).all() and (got["common_pid"] == got["tid"]).all()
