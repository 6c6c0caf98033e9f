"""The lackey workload: parser, trace columns, warm-cache misses, op source, a real valgrind run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generated.ibs_mprof import IbsMprofData3, IbsMprofLinaddr
from runtime.cpuid import SimulatedCpuid
from runtime.driver import Driver
from runtime.errors import InputError
from runtime.lackey import (
    KIND_LOAD,
    KIND_MODIFY,
    KIND_STORE,
    MAX_LINE_BYTES,
    LackeyOps,
    iter_records,
    lackey_workload,
    load_trace,
)
from runtime.machine import make_cpus
from runtime.memory import Memory, place_pages
from runtime.profiler import Profiler, TaggedOp
from runtime.topology import default_replay_topology
from runtime.vmstat import Vmstat
from tests.conftest import run_cli

LLC = 32 << 20
BANNER = "==4242== Lackey, an example Valgrind tool\n==4242== Command: ./prog\n==4242== \n"
SMALL = BANNER + (
    "I  00401126,4\n"
    " L 1ffefffd48,8\n"
    "I  0040112a,7\n"
    " S 04a5e040,8\n"
    "\n"
    "I  00401131,3\n"
    " M 04a5e048,8\n"
    " L 04a5f000,4\n"
    "==4242== Exit code:       0\n"
)


def write(tmp_path: Path, text: str, name: str = "trace.out") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parser_ignores_banner_and_blank_lines_and_reads_every_kind(tmp_path: Path) -> None:
    records = list(iter_records(write(tmp_path, SMALL)))
    assert records == [("I", 0x401126, 4), ("L", 0x1FFEFFFD48, 8), ("I", 0x40112A, 7),
                       ("S", 0x4A5E040, 8), ("I", 0x401131, 3), ("M", 0x4A5E048, 8),
                       ("L", 0x4A5F000, 4)]


def test_trace_columns_m_is_one_op_and_pages_are_numbered_by_first_touch(
        tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, SMALL), LLC, 64)
    assert len(trace) == 7 and trace.data_ops == 4  # the M is one op, not two
    assert list(trace.positions) == [1, 3, 5, 6]
    assert list(trace.kinds) == [KIND_LOAD, KIND_STORE, KIND_MODIFY, KIND_LOAD]
    assert list(trace.vpages) == [0x1FFEFFF, 0x4A5E, 0x4A5F]  # first-touch order
    assert list(trace.pages) == [0, 1, 1, 2]
    assert list(trace.offsets) == [0xD48, 0x040, 0x048, 0x000]
    assert trace.vaddr(2) == 0x4A5E048
    assert trace.kind_counts() == {"L": 2, "S": 1, "M": 1}
    assert list(trace.page_accesses()) == [1, 2, 1]
    assert list(trace.page_stores()) == [0, 2, 0]  # S and M both store
    assert trace.page_id(0x4A5E) == 1 and trace.page_id(0x1234) is None
    # Everything fits in the LLC: the warm second pass has no misses (the first had four).
    assert list(trace.miss) == [0, 0, 0, 0]


def test_max_records_keeps_the_first_records(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, SMALL), LLC, 64, max_records=4)
    assert len(trace) == 4 and trace.data_ops == 2


@pytest.mark.parametrize("line, why", [
    ("I 00401126,4", "an 'I' record has two spaces before its address"),
    (" X 04a5e040,8", "not a lackey record"),
    (" L 04a5e040", "no ',size' after the address"),
    (" L 0x4a5e040,8", "the address is not hex digits (no 0x)"),
    (" L 04a5g040,8", "the address is not hex digits (no 0x)"),
    (" L 04a5e040,eight", "the size is not a decimal number"),
    (" L 04a5e040,8 extra", "text after the size"),
    ("L 04a5e040,8", "not a lackey record"),  # no leading space
    ("=4242= banner-ish", "not a lackey record"),
])
def test_malformed_line_names_file_line_and_what_is_wrong(tmp_path: Path, line: str,
                                                         why: str) -> None:
    path = write(tmp_path, BANNER + "I  00401126,4\n" + line + "\n L 04a5e040,8\n")
    with pytest.raises(InputError) as err:
        list(iter_records(path))
    assert str(err.value) == f"{path}:5: {why}; expected 'I  addr,size' or ' L|S|M addr,size' " \
        "(hex address, decimal size)"
    with pytest.raises(InputError, match=f":5: {re.escape(why)}; "):
        load_trace(path, LLC, 64)


def test_a_trace_path_to_another_file_prints_the_path_not_the_file(tmp_path: Path) -> None:
    """workload.trace pointing at a secret (here a fake key) names the file, never its lines."""
    secret = write(tmp_path, "-----BEGIN KEY-----\nc2VjcmV0IGtleSBtYXRlcmlhbA==\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"workload:\n  kind: lackey\n  trace: {secret}\n")
    result = run_cli("run", str(scenario), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"ibs-mprof: error: {secret}:1: not a lackey record; expected 'I  " \
        "addr,size' or ' L|S|M addr,size' (hex address, decimal size)\n"


def test_binary_garbage_and_overlong_lines_are_errors_with_bounded_reads(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.out"
    garbage.write_bytes(b"\x00\xff" * (4 * MAX_LINE_BYTES))  # no newline at all
    with pytest.raises(InputError, match=r"garbage.out:1: line longer than"):
        load_trace(garbage, LLC, 64)
    long_banner = write(tmp_path, "==1== " + "x" * (3 * MAX_LINE_BYTES) + "\n L 00001000,8\n")
    assert list(iter_records(long_banner)) == [("L", 0x1000, 8)]


@pytest.mark.parametrize("text, what", [
    ("", "empty lackey trace"),
    (BANNER, "empty lackey trace"),
    (BANNER + "I  00401126,4\nI  0040112a,7\n", "no data accesses"),
])
def test_empty_trace_or_no_data_access_is_an_error(tmp_path: Path, text: str,
                                                   what: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=what):
        load_trace(path, LLC, 64)
    with pytest.raises(InputError, match=what):
        list(iter_records(path))


def test_unreadable_trace_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.out"
    with pytest.raises(InputError, match=r"nope.out: cannot read lackey trace"):
        load_trace(missing, LLC, 64)
    with pytest.raises(InputError, match=r"cannot read lackey trace"):
        list(iter_records(tmp_path))  # a directory


def test_second_lru_pass_gives_warm_cache_misses(tmp_path: Path) -> None:
    one_set = 64 * 16  # a single 16-way set
    fits = "".join(f" L {line * 64:08x},8\n" for line in range(16)) * 3
    assert sum(load_trace(write(tmp_path, fits), one_set, 64).miss) == 0
    # 17 lines cycled through a 16-way LRU set: every access misses, pass after pass.
    thrash = "".join(f" L {line * 64:08x},8\n" for line in range(17))
    assert list(load_trace(write(tmp_path, thrash), one_set, 64).miss) == [1] * 17


def test_workload_and_ops_from_a_synthetic_trace(tmp_path: Path) -> None:
    # Page 0x10 is hot (three lines, always reused); pages 0x20.. are 40 lines cycled through a
    # 32-line cache together with the hot lines, so they miss; instruction fetches in between.
    hot = [0x10000, 0x10040, 0x10080]
    cold = [0x20000 + 64 * i for i in range(40)]
    lines = []
    for i, addr in enumerate(cold):
        lines.append(f"I  {0x400000 + i:08x},3")
        lines.append(f" {'LSM'[i % 3]} {hot[i % 3]:08x},8")
        lines.append(f" L {addr:08x},8")
    path = write(tmp_path, BANNER + "\n".join(lines) + "\n")
    workload, ops = lackey_workload({"trace": str(path), "placement": "dram"}, 64 * 32, 64)
    trace = ops.trace
    assert isinstance(ops, LackeyOps) and LackeyOps(trace).tagged_op(1, 2, 0.0).l3_miss
    assert workload.kind == "lackey" and workload.placement == "dram"
    assert workload.pages == trace.page_count == 2 and workload.kernel_fraction == 0
    assert workload.mem_op_fraction == pytest.approx(80 / 120)
    assert workload.load_fraction == pytest.approx((40 + 14 + 13) / 80)  # L + M over data ops
    (phase,) = workload.phases
    assert phase.start_ms == 0 and phase.label == "lackey trace.out"
    probs, miss = phase.probs.expand(), phase.miss.expand()
    assert probs.sum() == pytest.approx(1.0)
    assert np.all((miss >= 0) & (miss <= 1))
    assert probs[0] == pytest.approx(0.5)  # the hot page: half of the data accesses
    assert miss[0] < miss[1]
    assert workload.params["trace_summary"]["data_ops"] == 80

    # The op stream is the trace, in order, looping; every CPU sees the same stream.
    n = len(trace)
    for op_index in [0, 1, 2, 5, n - 1, n, n + 2, 7 * n + 4]:
        position = op_index % n
        expected = TaggedOp() if position % 3 == 0 else None
        got = ops.tagged_op(op_index % 4, op_index, 0.0)
        assert got == ops.tagged_op(0, position, 123.0)
        if expected is not None:
            assert got == expected
            continue
        k = list(trace.positions).index(position)
        kind = trace.kinds[k]
        assert got.load == (kind != KIND_STORE) and got.store == (kind != KIND_LOAD)
        assert got.page == trace.pages[k] and got.vaddr == trace.vaddr(k)
        assert got.l3_miss == bool(trace.miss[k]) and not got.kernel
    assert ops.tagged_op(0, 2, 0.0).vaddr == cold[0] and ops.tagged_op(0, 2, 0.0).l3_miss
    assert ops.tagged_op(0, 4, 0.0) == TaggedOp(load=False, store=True, vaddr=hot[1], page=0)


def test_profiler_samples_a_lackey_stream(tmp_path: Path) -> None:
    """Through the hardware model: L3MissOnly drops tags on fetches, keeps a missing access."""
    # 81 records: a fetch, then 40 x (fetch, load of a line that misses a 32-line cache).
    text = "I  00400000,3\n" + "".join(f"I  00400003,3\n L {0x20000 + 64 * i:08x},8\n"
                                       for i in range(40))
    workload, ops = lackey_workload({"trace": str(write(tmp_path, text)), "placement": "cxl"},
                                    64 * 32, 64)
    assert len(ops.trace) == 81 and list(ops.trace.miss) == [1] * 40
    topo = default_replay_topology()
    memory = Memory(topo)
    place_pages(memory, workload.pages, workload.placement)
    cpus = make_cpus(topo)
    driver = Driver(topo, cpus, SimulatedCpuid(), Vmstat(), lambda *a: 0)
    nmis: list[int] = []
    prof = Profiler(0, cpus[0].msr, cpus[0].apic, memory, nmis.append)
    driver.init()
    # Period 10000: tags at ops 10000 (record 37, a fetch) and 20000 (record 74, a load).
    assert prof.run(10**6, ops) == 20000
    assert nmis == [0] and prof.discards == {"l3_hit": 1}
    msr = cpus[0].msr
    assert IbsMprofLinaddr.decode(msr.rdmsr(IbsMprofLinaddr.ADDRESS)).lin_addr == \
        0x20000 + 64 * 36
    data3 = IbsMprofData3.decode(msr.rdmsr(IbsMprofData3.ADDRESS))
    assert data3.ld_op and not data3.st_op and data3.phy_addr_valid


PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    volatile char *buf = malloc(BYTES);
    if (!buf) return 1;
    for (int round = 0; round < ROUNDS; round++)
        for (long i = 0; i < BYTES; i += 4096)
            buf[i] = (char)round;
    printf("%p\n", (void *)buf);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="valgrind is not installed (CI installs it: apt-get install valgrind)")
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_real_valgrind_lackey_trace_of_a_buffer_writer(tmp_path: Path) -> None:
    buffer_bytes, rounds = 64 * 1024, 10000
    source = tmp_path / "writer.c"
    source.write_text(PROGRAM)
    binary = tmp_path / "writer"
    subprocess.run(["gcc", "-O2", f"-DBYTES={buffer_bytes}", f"-DROUNDS={rounds}", "-o",
                    str(binary), str(source)], check=True, capture_output=True, timeout=60)
    log = tmp_path / "lackey.out"
    run = subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={log}",
                          str(binary)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    buffer = int(run.stdout.strip(), 16)

    trace = load_trace(log, LLC, 64)
    assert trace.data_ops > rounds * buffer_bytes // 4096
    want = {(buffer + i) >> 12 for i in range(0, buffer_bytes, 4096)}
    assert len(want) == buffer_bytes // 4096
    ids = {vpage: trace.page_id(vpage) for vpage in want}
    assert None not in ids.values(), "buffer pages missing from the trace"
    stores = trace.page_stores()
    accesses = trace.page_accesses()
    for vpage, page in ids.items():
        assert page is not None
        assert stores[page] >= rounds, f"page {vpage:#x}: {stores[page]} stores"
    # The buffer's pages are among the most accessed (the start-up stack may beat them).
    top = set(np.argsort(-accesses, kind="stable")[:len(want) + 2].tolist())
    assert {page for page in ids.values()} <= top
