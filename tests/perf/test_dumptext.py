"""perf report -D text: op samples from their sample and IBS lines, hex dumps from real
perf output."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from generated.data_src import DataSrc
from generated.ibs_mprof import IbsMprofData2
from runtime.errors import InputError
from runtime.perf.dumptext import dump_bytes, parse_report
from runtime.perf.ingest import load_report_dump
from runtime.topology import Node, Topology

FIXTURE = Path(__file__).parent / "fixtures" / "zen-ibs-op-dumps.txt"


def report_text() -> str:
    """The public dumps, each after a PERF_RECORD_SAMPLE line of ours (the published
    excerpts leave that line out): cpu 3 at 2000 ns, then cpu 1 at 1000 ns."""
    text = FIXTURE.read_text()
    first = "3 2000 0x1b78 [0x88]: PERF_RECORD_SAMPLE(IP, 0x2): 77/78: 0x56016b2ea73d " \
            "period: 1 addr: 0\n"
    second = "1 1000 0x1c00 [0x88]: PERF_RECORD_SAMPLE(IP, 0x1): 0/0: 0xffffffff81000000 " \
             "period: 1 addr: 0\n"
    text = text.replace("ibs_op_ctl:\t0000009e", first + "ibs_op_ctl:\t0000009e", 1)
    return text.replace("ibs_op_ctl: 00000045", second + "ibs_op_ctl: 00000045", 1)


def test_report_text_gives_the_op_samples_and_their_words() -> None:
    zen3, zen4 = parse_report(report_text().splitlines(), "t")
    assert (zen3.cpu, zen3.time, zen3.pid, zen3.tid, zen3.misc) == (3, 2000, 77, 78, 2)
    assert zen3.words["IBS_DC_PHYSAD"] == 0x270485CE0 and not zen3.zen4
    assert zen4.zen4 and "IBS_DC_PHYSAD" not in zen4.words and zen4.misc == 1


def test_report_text_as_memory_profiler_samples(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_text(report_text())
    topo = Topology((Node(0, "top", "dram", 0, 0x200000),
                     Node(1, "lower", "cxl", 0x200000, 0x100000)), (0, 0, 0, 0))
    samples, drops = load_report_dump(path, topo)
    assert samples.time_ns.tolist() == [1000, 2000]  # time order
    assert samples.kernel.tolist() == [False, False]  # rip bit 63 of each: both user
    assert samples.pfn.tolist() == [0, 0x270485] and samples.nid.tolist() == [0, 1]
    assert IbsMprofData2.get_data_src(samples.data2).tolist() == [
        int(DataSrc.PEER_CCX_NEAR), int(DataSrc.LCL_CCX)]
    assert samples.l3_miss.tolist() == [True, False] and drops.total() == 0


def test_text_without_op_samples_is_one_error() -> None:
    with pytest.raises(InputError, match="no IBS op sample"):
        parse_report(["hello", "0x10 [0x8]: event: 9"], "t")


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf is not on PATH")
def test_dump_lines_of_real_perf_output_are_the_records_bytes(tmp_path: Path) -> None:
    data = tmp_path / "perf.data"
    done = subprocess.run(["perf", "record", "-q", "-o", str(data), "-e", "cpu-clock", "-c",
                           "100000", "--", "sh", "-c", "i=0; while [ $i -lt 9000 ]; do "
                           "i=$((i+1)); done"], capture_output=True, text=True, timeout=120)
    if done.returncode:
        pytest.skip(f"perf record failed here: {done.stderr.strip()[-200:]}")
    text = subprocess.run(["perf", "report", "-D", "-i", str(data)], capture_output=True,
                          text=True, timeout=120).stdout
    blob = data.read_bytes()
    blocks = re.split(r"\n(?=0x[0-9a-f]+@)", text)
    checked = 0
    for block in blocks:
        head = re.match(r"0x([0-9a-f]+)@\S+ \[0x([0-9a-f]+)\]: event: 9", block)
        if not head:
            continue
        offset, size = int(head.group(1), 16), int(head.group(2), 16)
        assert dump_bytes(block.splitlines(), "t") == blob[offset:offset + size]
        checked += 1
    assert checked > 3
