"""A perf IBS recording of any size whose content is known, written without a Python loop
per sample: what `ibs-mprof bench` reads to measure the reader and the ingest command at
the sizes users bring (a 1 GB perf.data), on a machine without IBS.

Process 42 ("bench") with one anonymous mapping samples the lower tier of the two-tier
machine from 2 CPUs, one sample every SPACING_NS: half the samples on HOT_PAGES pages, the
rest spread over the whole region, all L3 misses from CXL, a round mark every ROUND samples.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from generated.cpuid import IbsCaps
from generated.data_src import DataSrc
from generated.ibs_mprof import PAGE_SHIFT
from generated.ibs_op import IbsOpCtl, IbsOpData2, IbsOpData3
from runtime.perf import abi, writer
from runtime.topology import TWO_TIER_LOWER_PFN

OP_TYPE = 11
OP = writer.WAttr(type=OP_TYPE, ids=(100,), name="ibs_op//",
           sample_type=(abi.SAMPLE_IP | abi.SAMPLE_TID | abi.SAMPLE_TIME | abi.SAMPLE_ID
                        | abi.SAMPLE_CPU | abi.SAMPLE_PERIOD | abi.SAMPLE_RAW))
CAPS = IbsCaps(avail=True, fetch_sam=True, op_sam=True, zen4=True).encode()
PID = 42
VBASE = 0x7F0000000000
REGION_PAGES = (1 << 30) >> PAGE_SHIFT  # 1 GiB of CXL
HOT_PAGES = 1024
SPACING_NS = 10_000
ROUND = 4096
T0 = 1_000_000_000
_SENTINEL = {"time": 0x5151515151515151, "cpu": 0x37, "lin": 0x6262626262626262,
             "phy": 0x7373737373737373}


def _template() -> tuple[bytes, dict[str, int]]:
    """One sample record with sentinel values, and the byte offset of each field."""
    ctl = IbsOpCtl(period=0x10000, enable=True, val=True, l3_miss_only=True).encode()
    data2 = IbsOpData2(data_src=DataSrc.EXT_MEM).encode()
    data3 = IbsOpData3(ld_op=True, dc_miss=True, dc_lin_addr_valid=True,
                       dc_phy_addr_valid=True).encode()
    words = [ctl, 0x401000, 0, data2, data3, _SENTINEL["lin"], _SENTINEL["phy"]]
    record = writer.sample(OP, ip=0x401000, pid=PID, tid=PID, time=_SENTINEL["time"],
                           cpu=_SENTINEL["cpu"], raw=writer.ibs_op_payload(CAPS, words))
    offsets = {name: record.index(struct.pack("<Q", value))
               for name, value in _SENTINEL.items() if name != "cpu"}
    offsets["cpu"] = record.index(struct.pack("<II", _SENTINEL["cpu"], 0))
    return record, offsets


def _records(samples: int, seed: int) -> Iterator[bytes]:
    template, at = _template()
    rng = np.random.default_rng(seed)
    yield writer.comm(OP, PID, "bench", 1)
    yield writer.mmap2(OP, PID, VBASE, REGION_PAGES << PAGE_SHIFT, 0, "//anon", 1)
    for start in range(0, samples, ROUND):
        n = min(ROUND, samples - start)
        index = np.arange(start, start + n, dtype=np.uint64)
        page = np.where(rng.random(n) < 0.5, rng.integers(0, HOT_PAGES, n) * 97,
                        rng.integers(0, REGION_PAGES, n)).astype(np.uint64) % REGION_PAGES
        offset = (page << np.uint64(PAGE_SHIFT)) | np.uint64(0x40)
        yield writer.tiled(template, {
            at["time"]: np.uint64(T0) + index * np.uint64(SPACING_NS),
            at["cpu"]: index % np.uint64(2),
            at["lin"]: np.uint64(VBASE) + offset,
            at["phy"]: (np.uint64(TWO_TIER_LOWER_PFN) << np.uint64(PAGE_SHIFT)) + offset})
        yield writer.finished_round()


def write_recording(path: Path, samples: int, seed: int = 1) -> Path:
    """A recording of `samples` op samples (about 120 bytes each) at path."""
    return writer.PerfFile([OP], pmus={OP_TYPE: "ibs_op"}).write(path, _records(samples, seed))


def sample_bytes() -> int:
    """The size of one sample record: samples for a file size."""
    return len(_template()[0])
