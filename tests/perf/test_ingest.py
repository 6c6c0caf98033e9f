"""Ingest end to end on generated recordings whose hot pages are known: time order across
CPUs and rounds, drop reasons, page counts, the mapping of addresses to files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.errors import InputError
from runtime.perf import abi
from runtime.perf.ingest import Ingest, load_samples
from runtime.perf.writer import PerfFile, WAttr, finished_round, ibs_op_payload, sample
from runtime.topology import two_tier_topology
from tests.perf.helpers import CAPS, OP, PMUS, op_sample, op_words, write_op_file

TOPO = two_tier_topology((0, 0, 0, 0))
LOWER = 0x100000  # first PFN of the CXL node


def known_hot_recording(path: Path, seed: int = 1) -> tuple[Path, dict[int, int]]:
    """4 CPUs sampling 64 hot CXL pages 20x more often than 960 cold ones; each CPU's
    samples in time order, CPUs interleaved in bursts as perf's ring reads do."""
    rng = np.random.default_rng(seed)
    hot = LOWER + np.arange(64)
    cold = LOWER + 64 + np.arange(960)
    weights = np.concatenate([np.full(64, 20.0), np.ones(960)])
    pages = np.concatenate([hot, cold])
    per_cpu = []
    for _ in range(4):
        times = np.sort(rng.integers(0, 2_000_000_000, 3000))
        chosen = rng.choice(pages, size=times.size, p=weights / weights.sum())
        per_cpu.append(list(zip(times.tolist(), chosen.tolist(), strict=True)))
    records, counts = [], {}
    window = 2_000_000_000 // 30
    for burst in range(30):  # each round: what every CPU's ring held in one time window
        for cpu in range(4):
            for time, pfn in per_cpu[cpu]:
                if burst * window <= time < (burst + 1) * window or \
                        (burst == 29 and time >= 30 * window):
                    records.append(op_sample(pfn, time, cpu=cpu))
                    counts[pfn] = counts.get(pfn, 0) + 1
        records.append(finished_round())
    PerfFile([OP], pmus=PMUS).write(path, records)
    return path, counts


@pytest.mark.parametrize("block_bytes", [1 << 16, 1 << 22])
def test_hot_pages_and_time_order(tmp_path: Path, block_bytes: int) -> None:
    path, counts = known_hot_recording(tmp_path / "hot.data")
    samples, summary = load_samples(path, TOPO, block_bytes=block_bytes)
    assert len(samples) == sum(counts.values()) == summary.samples
    assert (np.diff(samples.time_ns.astype(np.int64)) >= 0).all()
    assert summary.drops.total() == 0
    pfns, seen = np.unique(samples.pfn, return_counts=True)
    assert dict(zip(pfns.tolist(), seen.tolist(), strict=True)) == counts
    top64 = set(pfns[np.argsort(-seen, kind="stable")[:64]].tolist())
    assert len(top64 & set(range(LOWER, LOWER + 64))) >= 60  # the known hot set
    assert (samples.nid == 1).all() and samples.l3_miss.all() and not samples.kernel.any()
    assert summary.first_time_ns == int(samples.time_ns[0])


def test_chunks_come_out_before_the_end_once_rounds_settle(tmp_path: Path) -> None:
    path, _ = known_hot_recording(tmp_path / "hot.data")
    chunks = list(Ingest(path, TOPO, block_bytes=1 << 16))
    assert len(chunks) > 5  # released round by round, not all at the end
    ends = [int(c.time_ns[-1]) for c in chunks]
    starts = [int(c.time_ns[0]) for c in chunks]
    assert all(s >= e for s, e in zip(starts[1:], ends, strict=False))


def test_each_drop_reason_is_counted(tmp_path: Path) -> None:
    other = WAttr(type=1, sample_type=OP.sample_type, ids=(300,), name="cpu-clock")
    bare = WAttr(type=OP.type, sample_type=OP.sample_type & ~abi.SAMPLE_RAW, ids=(400,))
    no_raw = sample(bare, time=5)
    short = sample(OP, time=6, raw=ibs_op_payload(CAPS, op_words(LOWER, 0x1000)[:5]))
    records = [op_sample(LOWER, 10), op_sample(LOWER + 1, 11, valid=False),
               sample(other, time=12, raw=b"abcd"), no_raw, short,
               sample(OP, time=13, sample_id=999, raw=b""), op_sample(LOWER, 14, cpu=9)]
    path = write_op_file(tmp_path / "d.data", records, attrs=[OP, other, bare])
    samples, summary = load_samples(path, TOPO)
    assert len(samples) == 1 and samples.pfn.tolist() == [LOWER]
    assert summary.drops.as_dict() == {"other_event": 1, "unknown_event": 1, "malformed": 0,
                                       "no_raw": 1, "raw_size": 1, "not_valid": 1,
                                       "unknown_cpu": 1, "late": 0}


def test_a_sample_older_than_what_was_released_is_late(tmp_path: Path) -> None:
    """Three rounds of 600 samples (more than a 64 KiB block), then one sample older than
    the first round: by then the first round was released, so it is late."""
    records = []
    for base in (1000, 2000, 3000):
        records += [op_sample(LOWER, base + i) for i in range(600)] + [finished_round()]
    records += [op_sample(LOWER, 50)] + [op_sample(LOWER, 4000 + i) for i in range(600)]
    path = write_op_file(tmp_path / "l.data", records)
    samples, summary = load_samples(path, TOPO, block_bytes=1 << 16)
    assert summary.drops["late"] == 1 and len(samples) == 2400
    assert (np.diff(samples.time_ns.astype(np.int64)) >= 0).all()
    whole, _ = load_samples(path, TOPO, block_bytes=1 << 24)  # one block: nothing is late
    assert len(whole) == 2401 and int(whole.time_ns[0]) == 50


def test_addresses_map_to_the_recorded_mapping_and_process(tmp_path: Path) -> None:
    path = write_op_file(tmp_path / "m.data", [op_sample(LOWER + 5, 1, pid=42),
                                               op_sample(LOWER + 6, 2, pid=43)])
    samples, summary = load_samples(path, TOPO)
    names, offsets = summary.lookup().describe(samples.pid, samples.vaddr)
    assert names == ["//anon", "[unknown]"]
    assert int(offsets[0]) == int(samples.vaddr[0]) - 0x7F0000000000
    assert summary.sideband.comm_of() == {42: "gups"}


def test_a_recording_without_ibs_op_is_refused(tmp_path: Path) -> None:
    clock = WAttr(type=1, sample_type=abi.SAMPLE_TIME, ids=(1,), name="cpu-clock")
    path = PerfFile([clock], pmus={1: "software"}).write(tmp_path / "c.data",
                                                         [sample(clock, time=1)])
    with pytest.raises(InputError, match="no ibs_op event"):
        load_samples(path, TOPO)


def test_page_rows_name_each_page_by_its_first_sample(tmp_path: Path) -> None:
    from runtime.perf.pages import HEADER, page_rows

    path = write_op_file(tmp_path / "p.data", [op_sample(LOWER + 1, 5, pid=42),
                                               op_sample(LOWER + 1, 6, pid=42),
                                               op_sample(LOWER + 2, 7, pid=42)])
    samples, summary = load_samples(path, TOPO)
    pages = np.array([LOWER + 2, LOWER + 1, LOWER + 9], dtype=np.int64)
    rows = page_rows(pages, np.array([10, 20, 30]), np.array([100, -1, 300]),
                     np.array([1, 1, 1]), samples.pfn, samples.pid, samples.vaddr,
                     summary.lookup(), summary.sideband.comm_of())
    assert len(rows[0]) == len(HEADER)
    assert [r[4] for r in rows] == [1, 2, 0]  # samples per page
    assert rows[1][5:7] == (42, "gups") and rows[1][8] == "//anon"
    assert rows[1][9] == hex(int(samples.vaddr[0]) - 0x7F0000000000)
    assert rows[2][5] == -1 and rows[2][8] == ""  # never sampled
