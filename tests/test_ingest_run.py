"""`ibs-mprof ingest`: generated perf recordings whose content is known, run through the kernel
model (runtime/recorded.py) and the command (runtime/perf/cli.py): hot pages promoted, the
recording's timestamps driving pghot's window, the work latency and kmigrated's poll, every
filter's drops, the same pghot calls as replaying the same MSR words, and the command's
one-line errors."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generated.data_src import DataSrc
from generated.ibs_mprof import (
    PAGE_SHIFT,
    IbsMprofData2,
    IbsMprofPhyaddr,
    ibs_mprof_ctl_set_val,
)
from generated.ibs_op import IbsOpData3
from runtime.cli import main
from runtime.jiffies import jiffies_at
from runtime.memory import lru_stamp
from runtime.perf import abi
from runtime.perf.cli import recording_scenario
from runtime.perf.header import MemNode, NumaNode, PerfHeader
from runtime.perf.ingest import Ingest, header_topology, load_samples
from runtime.perf.pages import HEADER
from runtime.perf.sysfs import topology_yaml
from runtime.perf.writer import PerfFile, comm, finished_round, ibs_op_payload, mmap2, sample
from runtime.progress import Quiet
from runtime.recorded import (
    Recorded,
    RecordedPages,
    recorded_engine,
    run_recording,
    scan_pages,
)
from runtime.replay import replay
from runtime.ring import SampleRing
from runtime.topology import (
    TWO_TIER_LOWER_PFN,
    Node,
    Topology,
    build_topology,
    two_tier_topology,
)
from tests.perf.helpers import CAPS, OP, PMUS, op_sample, op_words

TOPO = two_tier_topology((0, 0))
LOWER = TWO_TIER_LOWER_PFN
MS = 1_000_000  # ns
T0 = 5_000 * MS  # the recording's first timestamp (perf's clock is not 0 at the start)
HOT = [LOWER + 7 * i for i in range(16)]
COLD = [LOWER + 1000 + i for i in range(400)]


def write_recording(path: Path, samples: list[bytes], header_topology: bool = False) -> Path:
    """An ibs_op recording of process 42 ("gups", one anonymous 1 GiB mapping), samples in
    the order given, a round mark every 64."""
    records = [comm(OP, 42, "gups", 1), mmap2(OP, 42, 0x7F0000000000, 1 << 30, 0, "//anon", 1)]
    for index, record in enumerate(samples, 1):
        records.append(record)
        if index % 64 == 0:
            records.append(finished_round())
    records.append(finished_round())
    file = _WithTopology([OP], pmus=PMUS) if header_topology else PerfFile([OP], pmus=PMUS)
    return file.write(path, records)


class _WithTopology(PerfFile):
    """A recording with the NUMA_TOPOLOGY and MEM_TOPOLOGY perf writes: node 0 (CPUs 0-1,
    blocks 0-7 of 128 MiB) and CPU-less node 1 (blocks 8-15), the two-tier machine."""

    def features(self) -> list[tuple[int, bytes]]:
        numa = struct.pack("<I", 2)
        for node, cpus in ((0, "0-1"), (1, "")):
            raw = cpus.encode() + b"\0"
            raw += b"\0" * (-len(raw) % abi.STRING_ALIGN)
            numa += struct.pack("<IQQ", node, 4 << 20, 1 << 20) + struct.pack("<I", len(raw))
            numa += raw
        block = 128 << 20
        mem = struct.pack("<QQQ", 1, block, 2)
        for node, bits in ((0, 0x00FF), (1, 0xFF00)):
            mem += struct.pack("<QQQ", node, 16, bits)
        return sorted([*super().features(), (abi.FEAT_NUMA_TOPOLOGY, numa),
                       (abi.FEAT_MEM_TOPOLOGY, mem)])


def at(ms: float) -> int:
    return T0 + int(ms * MS)


def hot_and_cold(path: Path) -> Path:
    """2 CPUs over 1 s: 16 hot CXL pages sampled every 100 ms (10 samples each, alternating
    CPUs), 400 cold ones sampled once each, 2 ms apart."""
    events = [(at(10 + 100 * k + i), HOT[i], k % 2) for k in range(10) for i in range(16)]
    events += [(at(1 + 2.5 * j), pfn, j % 2) for j, pfn in enumerate(COLD)]
    events.sort()
    return write_recording(path, [op_sample(pfn, t, cpu=cpu) for t, pfn, cpu in events])


def scenario(*overrides: str) -> dict[str, Any]:
    return recording_scenario(list(overrides))


def rows_by_pfn(recorded: Recorded) -> dict[int, tuple[object, ...]]:
    return {int(str(row[0])): row for row in recorded.page_rows}


# --- end to end -------------------------------------------------------------------------------

def test_hot_pages_are_promoted_and_named(tmp_path: Path) -> None:
    recorded = run_recording(hot_and_cold(tmp_path / "hc.data"), TOPO, scenario())
    result = recorded.result
    phase = result["phases"][0]
    assert phase["hot_pages"] == 16 and result["workload"]["pages"] == 416
    assert phase["promoted"]["pages"] == 16
    assert phase["promoted"]["precision"] == 1.0 and phase["promoted"]["recall"] == 1.0
    assert result["final"]["hot_pages_on_top"] == 16 and result["migrations"]["wasted"] == 0
    rows = rows_by_pfn(recorded)
    assert sorted(rows) == HOT  # a cold page, sampled once, is never READY
    for pfn, row in rows.items():
        record = dict(zip(HEADER, row, strict=True))
        assert record["samples"] == 10 and record["nid"] == 1
        assert record["pid"] == 42 and record["comm"] == "gups" and record["mapping"] == "//anon"
        assert record["offset"] == hex(((pfn & 0xFFFF) << 12) + 0x40)
        assert 0 <= int(str(record["first_ready_ms"])) <= int(str(record["promoted_ms"]))
    ing = result["ingest"]
    assert ing["samples"] == ing["samples_read"] == 16 * 10 + 400
    assert ing["first_time_ns"] == at(1) and ing["span_ms"] == pytest.approx(997.5)
    assert any("demotion off" in note for note in ing["notes"])
    assert result["migrations"]["demotions"] == 0
    assert result["sampling"]["in_rings_at_end"] == 0  # the run outlasts the last work


def test_truth_counts_l3_misses_and_pages_are_named_by_their_first_sample(
        tmp_path: Path) -> None:
    """A page sampled often but only as L3 hits carries no memory traffic: not hot, even
    when the profiler keeps hits. A page's process is its first sample's, chunks apart."""
    hits, named = LOWER + 50, LOWER + 60
    samples = [op_sample(named, at(0), pid=7)]
    samples += [op_sample(LOWER + 100 + i, at(1 + i)) for i in range(200)]  # 3 rounds
    samples += [op_sample(hits, at(300 + 10 * k), l3_miss_only=False,
                          data_src=int(DataSrc.LCL_CCX)) for k in range(20)]
    samples += [op_sample(named, at(600 + 10 * k)) for k in range(20)]
    path = write_recording(tmp_path / "t.data", samples)
    recorded = run_recording(path, TOPO, scenario("profiler.l3_miss_only=false"))
    assert recorded.result["phases"][0]["hot_pages"] == 1
    rows = rows_by_pfn(recorded)
    assert rows[hits][4] == 20 and int(str(rows[hits][2])) >= 0  # READY, yet not hot
    assert rows[named][4] == 21 and rows[named][5] == 7
    assert recorded.result["phases"][0]["promoted"]["precision"] == 0.5


def test_a_moved_page_is_latched_with_its_new_pfn_source_and_remoteness() -> None:
    """A recorded sample of a page that moved since is latched as the profiler would latch it
    now: its new PFN (same offset), its new node's data source and RmtNode by
    profiler.remote_node (set for a CPU on another node, clear for one on the page's node)."""
    topo = build_topology(2, 1, 1, 1 << 16, 1 << 16)  # CPU 0 on node 0, CPU 1 on node 1
    cxl_pfn = topo.node(2).pfn_start + 5
    one = np.ones(1, np.int64)
    pages = RecordedPages(pfns=np.array([cxl_pfn]), nids=np.array([2]), samples=one,
                          misses=one, pid=np.zeros(1, np.int64), vaddr=np.zeros(1, np.uint64),
                          first_ns=0, last_ns=1)
    engine = recorded_engine(pages, topo, scenario(), 1000.0)
    data2 = IbsMprofData2(data_src=DataSrc.EXT_MEM, rmt_node=True).encode()
    phyaddr = IbsMprofPhyaddr(phy_addr=cxl_pfn << PAGE_SHIFT | 0x48).encode()
    assert engine._where_now(0, 0, phyaddr, data2) == (phyaddr, data2)  # not moved: as recorded
    moved, _ = engine.memory.migrate_many(np.array([cxl_pfn]), 0)
    assert moved.size == 1
    for cpu, remote in ((0, False), (1, True)):
        got_phyaddr, got_data2 = engine._where_now(cpu, 0, phyaddr, data2)
        assert IbsMprofPhyaddr.decode(got_phyaddr).phy_addr == \
            engine.memory.pfn_of(0) << PAGE_SHIFT | 0x48
        latched = IbsMprofData2.decode(got_data2)
        assert latched.data_src == DataSrc.DRAM and latched.rmt_node == remote


def test_a_promoted_page_is_sampled_where_it_is_now(tmp_path: Path) -> None:
    """After kmigrated moved a hot page, its later samples reach pghot at its new, top-tier
    PFN (and the DRAM counter), not at the freed CXL one."""
    recorded = run_recording(hot_and_cold(tmp_path / "hc.data"), TOPO, scenario())
    pghot = recorded.result["sampling"]["pghot"]
    vm = recorded.result["vmstat"]
    assert pghot["same_node"] > 0  # a promoted page's sample names node 0, the CPU's node
    assert vm["hwhint_dram_accesses"] > 0
    assert vm["hwhint_dram_accesses"] + vm["hwhint_extmem_accesses"] == 560


def test_a_sampled_page_gets_the_lru_age_kswapd_reads(tmp_path: Path) -> None:
    """Every tagged access stamps its page's LRU age in the engines' unit (memory.lru_stamp),
    which is what demotion compares: a recording stamps the same way."""
    path = write_recording(tmp_path / "a.data", [op_sample(HOT[0], at(0)),
                                                 op_sample(HOT[1], at(10)),
                                                 op_sample(HOT[0], at(700))])
    pages = scan_pages(Ingest(path, TOPO), Quiet())
    engine = recorded_engine(pages, TOPO, scenario("demotion.enabled=true"), 90_000.0)
    engine.start()
    for chunk in Ingest(path, TOPO):
        engine.feed(chunk)
    unit = engine.memory.lru_unit_ms
    assert unit > 1  # a 90 s run: coarser than a ms, as the uint16 stamps need
    assert [int(engine.memory.last_access[page]) for page in (0, 1)] == [
        lru_stamp(700.0, unit), lru_stamp(10.0, unit)]


# --- timestamps drive the model -----------------------------------------------------------------

def test_pghot_window_comes_from_the_timestamps(tmp_path: Path) -> None:
    near, far = LOWER + 1, LOWER + 2  # two samples 2 s apart vs 3.5 s apart (window 3 s)
    samples = [op_sample(near, at(0)), op_sample(far, at(1)), op_sample(near, at(2000)),
               op_sample(far, at(3501))]
    recorded = run_recording(write_recording(tmp_path / "w.data", samples), TOPO, scenario())
    assert sorted(rows_by_pfn(recorded)) == [near]
    wide = run_recording(tmp_path / "w.data", TOPO,
                         scenario("pghot.promote_freq_window_ms=3968"))
    assert sorted(rows_by_pfn(wide)) == [near, far]


@pytest.mark.parametrize("latency", [1.0, 7.0])
def test_the_lag_sample_to_record_is_the_work_latency(tmp_path: Path, latency: float) -> None:
    """Each CPU's samples 20 ms apart: each one's work runs work_latency_ms after it."""
    samples = [op_sample(LOWER + i, at(10 * i), cpu=i % 2) for i in range(40)]
    recorded = run_recording(write_recording(tmp_path / "l.data", samples), TOPO,
                             scenario(f"driver.work_latency_ms={latency}"))
    lag = recorded.result["lag_ms"]
    assert lag["count"] == 40 and lag["max"] == latency and lag["mean"] == pytest.approx(latency)


def test_a_tag_at_the_instant_of_its_cpus_work_goes_into_that_drain(tmp_path: Path) -> None:
    """Canonical order at one instant: the tag before the work, so a sample at exactly the
    work's time is drained by it (lag 0), not left for a work of its own."""
    samples = [op_sample(LOWER + 1, at(0)), op_sample(LOWER + 2, at(1))]
    lag = run_recording(write_recording(tmp_path / "o.data", samples), TOPO,
                        scenario()).result["lag_ms"]
    assert lag["count"] == 2 and lag["mean"] == pytest.approx(0.5)


def test_kmigrated_promotes_at_its_polls(tmp_path: Path) -> None:
    """Two pages READY 300 ms apart: kmigrated polling every 1000 ms moves both at one poll,
    polling every 100 ms moves each at the poll after it became READY."""
    a, b = LOWER + 1, LOWER + 2
    samples = [op_sample(a, at(0)), op_sample(a, at(5)),
               op_sample(a, at(150)),  # READY again, a tick later: its first READY stays
               op_sample(b, at(300)), op_sample(b, at(305)), op_sample(LOWER + 3, at(2500))]
    path = write_recording(tmp_path / "k.data", samples)
    for sleep in (1000, 100):
        rows = rows_by_pfn(run_recording(path, TOPO, scenario(f"kmigrated.sleep_ms={sleep}")))
        ready = {pfn: int(str(rows[pfn][2])) for pfn in (a, b)}
        promoted = {pfn: int(str(rows[pfn][3])) for pfn in (a, b)}
        assert ready[a] == 6 and ready[b] == 306  # the second sample + 1 ms of work latency
        assert rows[a][4] == 3
        for pfn in (a, b):
            assert ready[pfn] <= promoted[pfn] <= ready[pfn] + sleep + 64  # timer slack
        if sleep == 1000:
            assert promoted[a] == promoted[b] >= 900
        else:
            assert promoted[b] - promoted[a] >= 200


# --- filters ------------------------------------------------------------------------------------

def test_every_filter_drops_with_its_reason(tmp_path: Path) -> None:
    words = op_words(LOWER + 5, 0x7F0000005040)
    words[4] = IbsOpData3(ld_op=True, dc_miss=True, dc_lin_addr_valid=True).encode()  # no PA
    samples = [
        op_sample(LOWER + 1, at(0)),
        sample(OP, ip=0x401000, pid=42, tid=42, time=at(1), raw=ibs_op_payload(CAPS, words)),
        op_sample(LOWER + 2, at(2), l3_miss_only=False, data_src=int(DataSrc.LCL_CCX)),
        op_sample(LOWER + 3, at(3), rip=0xFFFFFFFF81000000),  # a kernel RIP
        op_sample(LOWER + 4, at(4), cpu=7),  # no such CPU
        op_sample(0x300000, at(5)),  # a PFN on no node
    ]
    result = run_recording(write_recording(tmp_path / "f.data", samples), TOPO,
                           scenario()).result
    sampling = result["sampling"]
    assert result["ingest"]["drops"]["unknown_cpu"] == 1
    assert sampling["tags_discarded"] == {"l3_hit": 1, "excluded_kernel": 1}
    assert sampling["driver"] == {"pushed": 1, "laddr_invalid": 0, "paddr_invalid": 1,
                                  "pfn_offline": 1, "ring_full": 0}
    kept = run_recording(tmp_path / "f.data", TOPO,
                         scenario("profiler.l3_miss_only=false",
                                  "profiler.exclude_kernel=false")).result["sampling"]
    assert kept["tags_discarded"] == {} and kept["driver"]["pushed"] == 3


def test_the_ring_fills_when_one_cpu_samples_faster_than_its_work_drains(tmp_path: Path) -> None:
    burst = [op_sample(LOWER + i, T0 + 2000 * i) for i in range(200)]  # 200 within 0.4 ms
    later = [op_sample(LOWER + 300, at(50))]
    result = run_recording(write_recording(tmp_path / "r.data", burst + later), TOPO,
                           scenario()).result
    driver = result["sampling"]["driver"]
    room = SampleRing().capacity  # 149: one of the 150 slots stays empty
    assert driver["ring_full"] == 200 - room and driver["pushed"] == room + 1  # then drained
    spread = [op_sample(LOWER + i, at(2 * i)) for i in range(200)]
    calm = run_recording(write_recording(tmp_path / "s.data", spread), TOPO,
                         scenario()).result["sampling"]["driver"]
    assert calm["ring_full"] == 0 and calm["pushed"] == 200


# --- the same model as replay -------------------------------------------------------------------

def test_same_pghot_calls_as_replaying_the_same_msr_words(tmp_path: Path) -> None:
    """Samples on both CPUs, some the driver drops: the recorded engine's pghot calls (per
    CPU, in order) and driver counters equal what `replay` gives for the same MSR words at
    the same jiffies. kmigrated never runs in the span (its first poll is later), so no page
    moves and the words stay the recording's."""
    rng = np.random.default_rng(3)
    pfns = [int(p) for p in LOWER + rng.integers(0, 64, 120)]
    samples = [op_sample(pfn, at(0.37 * i), cpu=i % 2) for i, pfn in enumerate(pfns)]
    samples.append(op_sample(0x300000, at(50), cpu=1))  # offline: pfn_offline
    path = write_recording(tmp_path / "e.data", samples)
    sc = scenario("kmigrated.sleep_ms=1000")
    pages = scan_pages(Ingest(path, TOPO), Quiet())
    engine = recorded_engine(pages, TOPO, sc, pages.span_ms() + 100)
    engine.start()
    for chunk in Ingest(path, TOPO):
        engine.feed(chunk)
    engine.run()
    assert len(engine.pghot.promotions) == 0

    words, _ = load_samples(path, TOPO)
    ctl = ibs_mprof_ctl_set_val(engine.driver.program[0], 1)
    t_ms = (words.time_ns - np.uint64(pages.first_ns)).astype(np.int64) / 1e6
    lines = ["cpu,time,ctl,data2,data3,linaddr,phyaddr"]
    lines += [f"{c},{jiffies_at(t)},{ctl},{d2},{d3},{la},{pa}" for c, t, d2, d3, la, pa in zip(
        words.cpu.tolist(), t_ms.tolist(), words.data2.tolist(), words.data3.tolist(),
        words.linaddr.tolist(), words.phyaddr.tolist(), strict=True)]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    replayed = replay(tmp_path / "e.csv", TOPO, progress=Quiet())

    calls = engine.calls
    ours = sorted(zip(calls.column("cpu").tolist(), range(len(calls)),
                      calls.column("pfn").tolist(), calls.column("sample_ms").tolist(),
                      strict=True))
    theirs = sorted((cpu, i, pfn, time) for i, (cpu, pfn, _nid, time)
                    in enumerate(replayed.records))
    assert [(c, p, jiffies_at(s)) for c, _, p, s in ours] == \
        [(c, p, t) for c, _, p, t in theirs]
    assert len(theirs) == 120
    assert engine.driver.counters() == replayed.vmstat


# --- the command --------------------------------------------------------------------------------

def ingest(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`ibs-mprof ingest ARGV` through the command line's own entry point."""
    status = main(["ingest", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def topology_file(tmp_path: Path) -> Path:
    path = tmp_path / "machine.yaml"
    path.write_text(topology_yaml(TOPO, [], "test"))
    return path


def test_command_writes_the_report_and_pages_csv(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = hot_and_cold(tmp_path / "hc.data")
    out = tmp_path / "report"
    status, text, err = ingest([str(data), "--topology", str(topology_file(tmp_path)),
                                "--out", str(out), "--quiet"], capsys)
    assert status == 0 and err == ""
    assert text.startswith(f"ibs-mprof ingest: recording {data}: 560 ibs_op samples read, "
                           "560 reached the model; dropped none")
    assert "promoted (last phase)  precision 1.00  recall 1.00" in text
    with open(out / "pages.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == HEADER and sorted(int(r[0]) for r in rows[1:]) == HOT
    assert (out / "summary.txt").read_text().startswith("ibs-mprof ingest: recording")
    report = json.loads((out / "report.json").read_text())
    assert report["ingest"]["samples"] == 560 and report["scenario"]["workload"]["kind"] == \
        "recording"
    for name in ("timeline.csv", "heatmap.png", "fthr.png", "vmstat.txt"):
        assert (out / name).is_file()


def test_virtual_heatmap_rows_split_the_touched_regions_by_rank(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """100 touched 2 MiB regions of two processes make 64 rows in (pid, address) order, each
    user L3-miss sample counted once in its tick; kernel samples and L3 hits are not."""
    region = 1 << 21
    samples = [op_sample(LOWER + 512 * k, at(10 * k), pid=42 if k < 50 else 7)
               for k in range(100)]  # page offset 512 k: region k of the mapping
    samples += [op_sample(LOWER + 3, at(1001), rip=0xFFFFFFFF81000000),
                op_sample(LOWER + 4, at(1002), l3_miss_only=False,
                          data_src=int(DataSrc.LCL_CCX))]
    data = write_recording(tmp_path / "v.data", samples)
    status, _, _ = ingest([str(data), "--topology", str(topology_file(tmp_path)), "--out",
                           str(tmp_path / "o"), "--quiet"], capsys)
    assert status == 0
    heat = json.loads((tmp_path / "o" / "report.json").read_text())["virtual_heatmap"]
    assert heat["regions"] == 100 and len(heat["rows"]) == 64
    base = 0x7F0000000000
    ranked = [(7, base + k * region) for k in range(50, 100)] + [
        (42, base + k * region) for k in range(50)]
    assert [tuple(r) for r in heat["rows"]] == [ranked[-(-r * 100 // 64)] for r in range(64)]
    counts = np.asarray(heat["counts"])
    assert counts.sum() == 100
    # sample k (at 10 k ms) is in tick ceil(10 k / 100) - 1 (the first tick from 0) and in
    # the row of its rank
    for k in (0, 1, 10, 11, 49, 50, 99):
        rank = ranked.index((42 if k < 50 else 7, base + k * region))
        assert counts[max(-(-10 * k // 100) - 1, 0), rank * 64 // 100] >= 1
    lines = (tmp_path / "o" / "virtual_heatmap.txt").read_text().splitlines()
    assert len(lines) == 64 * counts.shape[0]
    assert lines[0].split()[1:3] == ["7", hex(ranked[0][1])]
    assert (tmp_path / "o" / "virtual_heatmap.png").is_file()


def test_command_json_and_the_topology_from_the_header(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    lower = 0x40000  # the header's node 1
    samples = [op_sample(lower + 1, at(0)), op_sample(lower + 1, at(4)),
               op_sample(lower + 2, at(9), cpu=5)]
    data = write_recording(tmp_path / "t.data", samples, header_topology=True)
    status, text, err = ingest([str(data), "--json", "--out", str(tmp_path / "o")], capsys)
    assert status == 0
    assert err.count("\n") == 1 and err.startswith("ibs-mprof: ingest: no --topology: topology "
                                                   "from the recording's NUMA_TOPOLOGY")
    report = json.loads(text)
    assert [(n["nid"], n["tier"], n["pfn_start"], n["pages"]) for n in
            report["machine"]["nodes"]] == [(0, "top", 0, 0x40000), (1, "lower", 0x40000, 0x40000)]
    assert report["machine"]["cpus"] == 2 and report["ingest"]["drops"]["unknown_cpu"] == 1
    assert "topology from the recording's" in report["ingest"]["notes"][0]


def test_command_refuses_bad_input_in_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = write_recording(tmp_path / "ok.data", [op_sample(LOWER, at(0))])
    machine = str(topology_file(tmp_path))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a recording\n" * 10)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    cut = tmp_path / "cut.data"
    cut.write_bytes(data.read_bytes()[:300])  # ends inside the data section
    out = str(tmp_path / "o")
    cases = [
        ([str(cut), "--topology", machine, "--out", out], "cut.data"),
        ([str(tmp_path / "missing.data"), "--topology", machine, "--out", out], "missing.data"),
        ([str(text_file), "--topology", machine, "--out", out], "notes.txt"),
        ([str(data), "--topology", machine, "--set", "workload.kind=zipf", "--out", out],
         "--set workload.kind: not used for a recording"),
        ([str(data), "--topology", machine, "--set", "duration_s=3", "--out", out],
         "--set duration_s: not used for a recording"),
        ([str(data), "--topology", machine, "--set", "pghot.no_such=1", "--out", out],
         "unknown key pghot.no_such"),
        ([str(data), "--topology", machine, "--out", str(foreign)], "--out"),
        ([str(data), "--out", out], "pass --topology FILE"),
        ([str(tmp_path / "missing.data"), "--out", str(foreign)], "--out"),  # checked first
    ]
    for argv, needle in cases:
        status, text, err = ingest(argv, capsys)
        assert status == 2 and text == "", argv
        assert err.count("\n") == 1 and needle in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "o").exists()
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]
    assert (foreign / "keep.txt").read_text() == "user data"


def test_the_promotion_target_is_the_machines_top_tier(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """On a machine whose node 0 is CXL, pages are promoted to its DRAM node unless
    pghot.target_nid says otherwise."""
    machine = Topology((Node(0, "lower", "cxl", 0, 1 << 18), Node(1, "top", "dram", 1 << 18,
                                                                   1 << 18)), (1, 1))
    (tmp_path / "m.yaml").write_text(topology_yaml(machine, [], "test"))
    data = write_recording(tmp_path / "c.data", [op_sample(9, at(k)) for k in range(3)] +
                           [op_sample(20, at(500))])
    status, text, _ = ingest([str(data), "--topology", str(tmp_path / "m.yaml"), "--json",
                              "--out", str(tmp_path / "o")], capsys)
    report = json.loads(text)
    assert status == 0 and report["migrations"]["promotions"] == 1
    assert "pghot.target_nid 1: the first top-tier node" in report["ingest"]["notes"]
    status, _, err = ingest([str(data), "--topology", str(tmp_path / "m.yaml"), "--set",
                             "pghot.target_nid=0", "--out", str(tmp_path / "o")], capsys)
    assert status == 2 and "target_nid" in err


def test_header_topology_puts_cpus_without_a_memory_node_on_the_first_top_node() -> None:
    """CPUs 2-3 offline (in no node's list), CPUs 4-5 on memoryless node 2: all on node 0;
    without MEM_TOPOLOGY there is no topology to take."""
    def header(mem: tuple[MemNode, ...]) -> PerfHeader:
        return PerfHeader(path=Path("r.data"), file_size=0, data_offset=0, data_size=0,
                          attrs=(), features=frozenset(), mem_block_size=128 << 20,
                          mem_nodes=mem, numa_nodes=(NumaNode(0, 0, 0, "0-1"),
                                                     NumaNode(1, 0, 0, ""),
                                                     NumaNode(2, 0, 0, "4-5")))

    found = header_topology(header((MemNode(0, np.arange(0, 8)), MemNode(1, np.arange(8, 16)))))
    assert found is not None
    topology, notes = found
    assert topology.cpu_node == (0, 0, 0, 0, 0, 0)
    assert [(n.nid, n.tier, n.pfn_start, n.pfn_count) for n in topology.nodes] == \
        [(0, "top", 0, 0x40000), (1, "lower", 0x40000, 0x40000)]
    assert "CPUs [2, 3, 4, 5] are offline or on a node without memory: put on node 0" in notes
    assert header_topology(header(())) is None


def test_watermark_scale_factor_applies_to_a_recording(tmp_path: Path) -> None:
    """machine.watermark_scale_factor is the recorded machine's sysctl: it moves the top
    tier's watermarks pghot and kswapd use (the step is present x factor / 10000)."""
    assert scenario("machine.watermark_scale_factor=50")["machine"][
        "watermark_scale_factor"] == 50
    pages = scan_pages(Ingest(hot_and_cold(tmp_path / "hc.data"), TOPO), Quiet())
    present = TOPO.nodes[0].pfn_count
    high = [recorded_engine(pages, TOPO, scenario(f"machine.watermark_scale_factor={f}"),
                            1000.0).pghot.watermarks.high_pages(present) for f in (10, 1000)]
    assert high[1] - high[0] >= present * (1000 - 10) // 10000 * 2 - 2
    assert scenario()["demotion"]["enabled"] is False
    assert scenario("demotion.enabled=true")["demotion"]["enabled"] is True
