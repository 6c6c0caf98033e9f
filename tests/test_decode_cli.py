"""`ibs-mprof decode`: register values and perf raw IBS payloads, text and JSON, bad input."""

from __future__ import annotations

import json
import struct

import pytest

from generated.cpuid import IbsCaps
from generated.ibs_fetch import IbsFetchCtl
from generated.ibs_op import IbsOpCtl, IbsOpData2, IbsOpData3
from tests.conftest import run_cli


def test_decode_register_json_combines_split_fields() -> None:
    result = run_cli("decode", "ibs_mprof_ctl", "0xB0271", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {"register": "IBS_MPROF_CTL", "raw": 0xB0271, "fields": {
        "period": 10000, "l3_miss_only": True, "enable": True, "val": False, "cnt_ctl": True}}


def test_decode_register_text_and_enum_name() -> None:
    result = run_cli("decode", "IBS_MPROF_DATA2", str(0x40 | 0x10))
    assert result.returncode == 0
    assert "data_src" in result.stdout and "8 (EXT_MEM)" in result.stdout
    out = json.loads(run_cli("decode", "IBS_MPROF_DATA2", "0x40", "--json").stdout)
    assert out["fields"]["data_src"] == 8 and out["fields"]["data_src_name"] == "EXT_MEM"


def payload(caps: int, *values: int) -> str:
    return (struct.pack("<I", caps) + b"".join(struct.pack("<Q", v) for v in values)).hex()


def test_decode_perf_raw_op_sample_with_brtarget() -> None:
    caps = IbsCaps(avail=True, fetch_sam=True, op_sam=True, brn_trgt=True, zen4=True).encode()
    ctl = IbsOpCtl(period=0x10000, enable=True, val=True).encode()
    data2 = IbsOpData2(data_src=8, rmt_node=True).encode()
    data3 = IbsOpData3(ld_op=True, dc_miss=True, dc_phy_addr_valid=True, dc_miss_lat=321).encode()
    hexstr = payload(caps, ctl, 0xFFFF1234, 0, data2, data3, 0x7F0000001000, 0x12345000, 0x4000)
    result = run_cli("decode", "--perf-raw", hexstr, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["kind"] == "op"
    assert out["caps"]["brn_trgt"] is True
    regs = out["registers"]
    assert list(regs) == ["IBS_OP_CTL", "IBS_OP_RIP", "IBS_OP_DATA", "IBS_OP_DATA2",
                          "IBS_OP_DATA3", "IBS_DC_LINAD", "IBS_DC_PHYSAD", "IBS_BR_TARGET"]
    assert regs["IBS_OP_CTL"]["period"] == 0x10000
    assert regs["IBS_OP_DATA2"]["data_src_name"] == "EXT_MEM"
    assert regs["IBS_OP_DATA3"]["dc_miss_lat"] == 321
    assert regs["IBS_DC_PHYSAD"]["dc_phys_ad"] == 0x12345000


def test_decode_perf_raw_fetch_sample() -> None:
    caps = IbsCaps(avail=True, fetch_sam=True, fetch_ctl_extd=True).encode()
    ctl = IbsFetchCtl(period=0x1000, fetch_en=True, fetch_val=True, fetch_lat=77).encode()
    result = run_cli("decode", "--perf-raw", payload(caps, ctl, 0x401000, 0x9000, 12), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["kind"] == "fetch"
    assert out["registers"]["IBS_FETCH_CTL"]["fetch_lat"] == 77
    assert out["registers"]["IC_IBS_EXTD_CTL"]["itlb_refill_lat"] == 12
    text = run_cli("decode", "--perf-raw", payload(caps, ctl, 0x401000, 0x9000, 12))
    assert "IBS fetch sample" in text.stdout


@pytest.mark.parametrize("args,needle", [
    (("decode", "NOPE", "1"), "unknown register 'NOPE'"),
    (("decode", "IBS_MPROF_CTL", "12zz"), "VALUE: expected a decimal or 0x-hex integer"),
    (("decode", "IBS_MPROF_CTL", str(1 << 64)), "does not fit in 64 bits"),
    (("decode", "IBS_MPROF_CTL", hex(1 << 40)), "reserved bits"),
    (("decode", "--perf-raw", "abc"), "even number of hex digits"),
    (("decode", "--perf-raw", "00" * 13), "expected 4 (caps) + 8 per MSR value"),
    (("decode", "--perf-raw", "07000000" + "00" * 40), "fit neither an op sample"),
    (("decode",), "expected REG VALUE"),
    (("frobnicate",), "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], needle: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert result.stdout == ""


def perf_dump_lines(data: bytes, dots: bool = True) -> str:
    """Bytes as perf report -D prints a raw event: '.  0000:  09 00 ...  ascii'."""
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{'.  ' if dots else ''}{at:04x}:  {hexes:<47}  {text}")
    return "\n".join(lines)


def test_decode_perf_raw_reads_perf_dump_lines_of_a_payload_and_of_a_record() -> None:
    from runtime.perf.writer import WAttr, ibs_op_payload, sample
    from tests.perf.helpers import IBS_ST

    caps = IbsCaps(avail=True, fetch_sam=True, op_sam=True, rd_wr_op_cnt=True, op_cnt=True,
                   brn_trgt=True, op_cnt_ext=True, rip_invalid_chk=True, op_brn_fuse=True,
                   fetch_ctl_extd=True, op_data4=True).encode()
    assert caps == 0x7FF  # the "ff 07" of a Zen3's dump
    data3 = IbsOpData3(ld_op=True, dc_lin_addr_valid=True, dc_phy_addr_valid=True,
                       dc_miss_lat=0x61)
    words = [IbsOpCtl(period=0x1000, enable=True, val=True).encode(), 0x4011AA, 0,
             IbsOpData2(data_src=3).encode(), data3.encode(), 0x7FFF0040, 0x1234040, 0, 0]
    payload = ibs_op_payload(caps, words)
    record = sample(WAttr(type=11, sample_type=IBS_ST, ids=(5,)), time=99, raw=payload)
    for text in (perf_dump_lines(payload, dots=False), perf_dump_lines(record)):
        assert text.splitlines()[0].lstrip(". ").startswith(("0000:  ff 07", "0000:  09 00"))
        result = run_cli("decode", "--perf-raw", text, "--json")
        assert result.returncode == 0, result.stderr
        regs = json.loads(result.stdout)["registers"]
        assert regs["IBS_OP_DATA3"]["dc_miss_lat"] == 0x61
        assert regs["IBS_OP_DATA2"]["data_src_name"] == "DRAM"
        assert regs["IBS_DC_PHYSAD"]["dc_phys_ad"] == 0x1234040
        assert list(regs)[-1] == "IBS_OP_DATA4"


@pytest.mark.parametrize("text,needle", [
    ("0000:  ff 07 00 00\n0008:  00 00", "starts at offset 0x8 but 0x4 bytes"),
    (".  0000:  09 00 00 00 00 00 10 00 11 22 33 44 55 66 77 88",
     "no IBS payload"),
])
def test_bad_dump_lines_are_one_line(text: str, needle: str) -> None:
    result = run_cli("decode", "--perf-raw", text)
    assert result.returncode == 2 and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
