"""Recordings built field by field for the perf tests."""

from __future__ import annotations

from pathlib import Path

from generated.cpuid import IbsCaps
from generated.ibs_op import IbsOpCtl, IbsOpData2, IbsOpData3
from runtime.perf import abi
from runtime.perf.writer import PerfFile, WAttr, comm, finished_round, ibs_op_payload, mmap2, sample

OP_TYPE = 11
FETCH_TYPE = 12
IBS_ST = (abi.SAMPLE_IDENTIFIER | abi.SAMPLE_IP | abi.SAMPLE_TID | abi.SAMPLE_TIME |
          abi.SAMPLE_CPU | abi.SAMPLE_PERIOD | abi.SAMPLE_RAW)
OP = WAttr(type=OP_TYPE, sample_type=IBS_ST, ids=(100, 101), name="ibs_op//")
CAPS = IbsCaps(avail=True, fetch_sam=True, op_sam=True, brn_trgt=True, zen4=True).encode()
PMUS = {OP_TYPE: "ibs_op", FETCH_TYPE: "ibs_fetch", 1: "software"}


def op_words(pfn: int, vaddr: int, *, load: bool = True, data_src: int = 8,
             l3_miss_only: bool = True, valid: bool = True, rip: int = 0x401000) -> list[int]:
    """The 8 MSR words (CAPS has BRNTRGT) of an op sample touching pfn at vaddr."""
    ctl = IbsOpCtl(period=0x10000, enable=True, val=valid, l3_miss_only=l3_miss_only).encode()
    data2 = IbsOpData2(data_src=data_src if load else 0).encode()
    data3 = IbsOpData3(ld_op=load, st_op=not load, dc_miss=True, dc_lin_addr_valid=True,
                       dc_phy_addr_valid=True).encode()
    return [ctl, rip, 0, data2, data3, vaddr, (pfn << 12) | (vaddr & 0xFFF), 0]


def op_sample(pfn: int, time: int, *, cpu: int = 0, pid: int = 42, attr: WAttr = OP,
              **kwargs: object) -> bytes:
    vaddr = 0x7F0000000000 + ((pfn & 0xFFFF) << 12) + 0x40
    return sample(attr, ip=0x401000, pid=pid, tid=pid, time=time, cpu=cpu,
                  raw=ibs_op_payload(CAPS, op_words(pfn, vaddr, **kwargs)))  # type: ignore[arg-type]


def write_op_file(path: Path, samples: list[bytes], round_every: int = 0,
                  attrs: list[WAttr] | None = None) -> Path:
    """An ibs_op recording of process 42 ("gups", one anonymous 1 GiB mapping)."""
    records = [comm(OP, 42, "gups", 1), mmap2(OP, 42, 0x7F0000000000, 1 << 30, 0, "//anon", 1)]
    for index, record in enumerate(samples, 1):
        records.append(record)
        if round_every and index % round_every == 0:
            records.append(finished_round())
    records.append(finished_round())
    return PerfFile(attrs or [OP], pmus=PMUS).write(path, records)
