"""Replay CSVs and lackey traces are streamed: parsing memory does not grow with the file.

Each test writes a 64 MiB file (a repeated chunk, so it takes a fraction of a second) and
parses it in a child process, which reports the peak of Python allocations during the parse
(tracemalloc) and how far its resident set rose above where it was after a warm-up parse of
one chunk (Linux: VmHWM after resetting it through /proc/self/clear_refs). Both must stay far
below the file size. What the parse keeps by design is excluded from the property by the
choice of rows:

- replay keeps the records and MSR writes it returns (the output is proportional to the rows
  that produce some): the rows here have VAL clear, which the driver ignores, between blank
  padding lines;
- load_trace keeps 16 bytes per data access (its columns): the trace here is banner lines and
  instruction fetches, with one data access per 16 KiB chunk, and ends in one 8 MiB banner
  line without a newline (skipped in pieces).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

MIB = 1 << 20
FILE_BYTES = 64 * MIB
PYTHON_LIMIT = 4 * MIB
"""Peak Python allocations allowed during the big parse (a sixteenth of the file)."""
RSS_LIMIT = 16 * MIB
"""Rise of the peak resident set allowed over the resident set after the warm-up parse."""

CHILD = """
import json, re, resource, sys, tracemalloc
from pathlib import Path
from runtime.lackey import iter_records, load_trace
from runtime.replay import replay

def parse(kind, path):
    if kind == "replay":
        result = replay(Path(path))
        return {"records": len(result.records), "writes": len(result.msr_writes),
                "vmstat": result.vmstat}
    trace = load_trace(path, 1 << 20, 64)
    records = sum(1 for _ in iter_records(path))
    return {"ops": trace.ops, "data_ops": trace.data_ops, "records": records}

def status(key):
    text = open("/proc/self/status").read()
    return int(re.search(key + r":\\s+(\\d+) kB", text).group(1)) * 1024

kind, small, big = sys.argv[1:]
parse(kind, small)  # warm-up: imports, lazy tables, allocator arenas
try:  # Linux: reset the peak resident set (VmHWM) to the current one
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before, peak = status("VmRSS"), lambda: status("VmHWM")
except OSError:  # elsewhere: growth of the lifetime peak, which may hide some
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
out = parse(kind, big)
out["python_peak"] = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
out["rss_growth"] = peak() - before
print(json.dumps(out))
"""


def write_repeated(path: Path, head: bytes, chunk: bytes, total: int, tail: bytes = b"") -> int:
    """head, then chunk repeated up to `total` bytes (written 4 MiB at a time), then tail;
    returns how many chunks were written."""
    count = max(1, (total - len(head) - len(tail)) // len(chunk))
    per_write = max(1, 4 * MIB // len(chunk))
    with path.open("wb") as handle:
        handle.write(head)
        for start in range(0, count, per_write):
            handle.write(chunk * min(per_write, count - start))
        handle.write(tail)
    return count


def parse_in_child(kind: str, small: Path, big: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", CHILD, kind, str(small), str(big)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_replay_parsing_memory_is_bounded(tmp_path: Path) -> None:
    head = b"cpu,time,ctl,data2,data3,linaddr,phyaddr\n"
    rows = b"".join(f"{cpu},{100 + cpu},0xB0271,0x3,0x60001,0,0x5000\n".encode()
                    for cpu in range(2))  # VAL clear: an NMI that is not ours
    chunk = rows + (b" " * 4095 + b"\n") * 4  # rows, then blank padding lines
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    write_repeated(small, head, chunk, 1)
    chunks = write_repeated(big, head, chunk, FILE_BYTES)
    assert big.stat().st_size >= FILE_BYTES - len(chunk)
    out = parse_in_child("replay", small, big)
    assert out["records"] == out["writes"] == 0 and chunks > 4000
    assert out["python_peak"] < PYTHON_LIMIT, out
    assert out["rss_growth"] < RSS_LIMIT, out


def test_lackey_parsing_memory_is_bounded(tmp_path: Path) -> None:
    head = b"==4242== Lackey, an example Valgrind tool\n"
    fetches = b"".join(f"I  {0x401000 + 4 * i:08x},4\n".encode() for i in range(8))
    data = b" L 1ffefffd48,8\n"
    banner = b"==4242== " + b"x" * 4000 + b"\n"
    chunk = fetches + data + banner * 4
    tail = b"==4242== " + b"y" * (8 * MIB)  # one long banner line, no newline
    small, big = tmp_path / "small.out", tmp_path / "big.out"
    write_repeated(small, head, chunk, 1)
    chunks = write_repeated(big, head, chunk, FILE_BYTES, tail)
    out = parse_in_child("lackey", small, big)
    assert out["ops"] == out["records"] == 9 * chunks and out["data_ops"] == chunks
    assert out["python_peak"] < PYTHON_LIMIT, out
    assert out["rss_growth"] < RSS_LIMIT, out
