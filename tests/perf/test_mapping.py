"""The Op -> Memory Profiler mapping: checked when loaded, applied to public Zen samples
(whose fields perf itself decoded), errata, and the driver's rules reading its output."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from generated.cpuid import IbsCaps
from generated.data_src import DataSrc
from generated.ibs_mprof import IbsMprofData2, IbsMprofData3
from generated.registry import REGISTERS
from runtime import driver
from runtime.errors import InputError
from runtime.perf.dumptext import _WORD, _WORD_LINES
from runtime.perf.ibs import OP_ALWAYS, OP_OPTIONAL
from runtime.perf.mapping import default_path, load_mapping

FIXTURE = Path(__file__).parent / "fixtures" / "zen-ibs-op-dumps.txt"
NAMES = [c.NAME for c in OP_ALWAYS] + [c.NAME for c, _ in OP_OPTIONAL]
PERF_FIELDS = {  # perf report -D token -> field of our spec
    "MaxCnt": "period", "L3MissOnly": "l3_miss_only", "En": "enable", "Val": "val",
    "CntCtl": "cnt_ctl", "CurCnt": "cur_cnt", "CompToRetCtr": "comp_to_ret_ctr",
    "TagToRetCtr": "tag_to_ret_ctr", "BrnRet": "op_brn_ret", "RipInvalid": "rip_invalid",
    "BrnFuse": "op_brn_fuse", "Microcode": "op_microcode", "RmtNode": "rmt_node",
    "DataSrc": "data_src", "CacheHitSt": "cache_hit_st", "LdOp": "ld_op", "StOp": "st_op",
    "DcL1TlbMiss": "dc_l1tlb_miss", "DcL2TlbMiss": "dc_l2tlb_miss",
    "DcL1TlbHit2M": "dc_l1tlb_hit_2m", "DcL1TlbHit1G": "dc_l1tlb_hit_1g",
    "DcL2TlbHit2M": "dc_l2tlb_hit_2m", "DcMiss": "dc_miss", "DcMisAcc": "dc_mis_acc",
    "DcWcMemAcc": "dc_wc_mem_acc", "DcUcMemAcc": "dc_uc_mem_acc",
    "DcLockedOp": "dc_locked_op", "DcMissNoMabAlloc": "dc_miss_no_mab_alloc",
    "DcLinAddrValid": "dc_lin_addr_valid", "DcPhyAddrValid": "dc_phy_addr_valid",
    "DcL2TlbHit1G": "dc_l2tlb_hit_1g", "L2Miss": "l2_miss", "SwPf": "sw_pf",
    "OpDcMissOpenMemReqs": "op_dc_miss_open_mem_reqs", "DcMissLat": "dc_miss_lat",
    "TlbRefillLat": "tlb_refill_lat",
}


def fixture_samples() -> list[list[tuple[str, int, str]]]:
    """Per sample of the fixture: (register, raw value, what perf printed after it)."""
    samples: list[list[tuple[str, int, str]]] = []
    for line in FIXTURE.read_text().splitlines():
        match = _WORD.match(line.strip())
        if not match or match.group(1) not in _WORD_LINES:
            continue
        if match.group(1) == "ibs_op_ctl":
            samples.append([])
        samples[-1].append((_WORD_LINES[match.group(1)], int(match.group(2), 16),
                            match.group(3)))
    return samples


def test_the_spec_decodes_public_zen_samples_as_perf_did() -> None:
    checked = 0
    for sample in fixture_samples():
        for register, raw, printed in sample:
            value = REGISTERS[register].decode(raw)
            for token, number in re.findall(r"(\w+)\s+(\d+)", printed):
                if token == "OpMemWidth":
                    assert 1 << (value.op_mem_width - 1) == int(number)  # type: ignore[attr-defined]
                elif token in PERF_FIELDS:
                    assert int(getattr(value, PERF_FIELDS[token])) == int(number), (token, raw)
                    checked += 1
    assert checked > 60


def words_of(sample: list[tuple[str, int, str]]) -> dict[str, np.ndarray]:
    given = {register: raw for register, raw, _ in sample}
    return {name: np.array([given.get(name, 0)], dtype=np.uint64) for name in NAMES}


def caps(**bits: bool) -> np.ndarray:
    return np.array([IbsCaps(avail=True, op_sam=True, **bits).encode()], dtype=np.uint64)


def test_public_samples_map_to_what_the_profiler_would_latch() -> None:
    zen3, zen4 = fixture_samples()
    mapping = load_mapping()
    user = np.array([False])
    out3 = mapping.apply(words_of(zen3), caps(), user, ("AuthenticAMD", 0x19, 0x01))
    # a store that hit a local-node cache: legacy DataSrc 2, no L3 miss, addresses valid
    assert IbsMprofData2.get_data_src(out3.data2)[0] == DataSrc.LCL_CCX
    assert not out3.l3_miss[0] and not out3.kernel[0]
    assert IbsMprofData3.get_st_op(out3.data3)[0] and not IbsMprofData3.get_ld_op(out3.data3)[0]
    assert int(out3.phyaddr[0]) == 0x270485CE0 and int(out3.linaddr[0]) == 0x7F133C319CE0
    assert driver.sample_filter(int(out3.data3[0]), 1) == driver.PUSHED
    assert driver.sample_pfn(int(out3.phyaddr[0])) == 0x270485
    out4 = mapping.apply(words_of(zen4), caps(zen4=True), user, ("AuthenticAMD", 0x19, 0x11))
    # Zen4 with L3MissOnly: a load served by a peer CCX; the hardware kept only misses
    assert IbsMprofData2.get_data_src(out4.data2)[0] == DataSrc.PEER_CCX_NEAR
    assert out4.l3_miss[0] and IbsMprofData3.get_l2_miss(out4.data3)[0]


def test_erratum_1293_clears_data2_on_zen3_only() -> None:
    _, zen4 = fixture_samples()  # DcMissNoMabAlloc is set in this sample
    words = words_of(zen4)
    words["IBS_OP_DATA2"][:] = IbsMprofData2.encode_array(data_src=np.array([8]))
    words["IBS_OP_CTL"][:] &= ~np.uint64(1 << 16)  # no hardware L3 filter
    mapping = load_mapping()
    on_zen3 = mapping.apply(words, caps(zen4=True), np.array([False]), ("AuthenticAMD", 25, 1))
    on_zen4 = mapping.apply(words, caps(zen4=True), np.array([False]), ("AuthenticAMD", 25, 17))
    assert IbsMprofData2.get_data_src(on_zen3.data2)[0] == DataSrc.NONE
    assert not on_zen3.l3_miss[0] and not IbsMprofData3.get_l2_miss(on_zen3.data3)[0]
    assert IbsMprofData2.get_data_src(on_zen4.data2)[0] == DataSrc.EXT_MEM
    assert on_zen4.l3_miss[0]
    assert driver.data_src_event(int(on_zen4.data2[0])) == driver.VM_EXTMEM
    assert driver.data_src_event(int(on_zen3.data2[0])) == -1


def test_kernel_is_rip_bit_63_or_perfs_cpumode_when_the_rip_is_invalid() -> None:
    zen3, _ = fixture_samples()
    words = {k: np.repeat(v, 4) for k, v in words_of(zen3).items()}
    words["IBS_OP_RIP"][:] = [1 << 63, 0, 1 << 63, 0]
    words["IBS_OP_DATA"][2:] |= np.uint64(1 << 38)  # rip_invalid
    perf_says = np.array([False, True, False, True])
    out = load_mapping().apply(words, np.repeat(caps(), 4), perf_says, None)
    assert out.kernel.tolist() == [True, False, False, True]


def test_legacy_and_extended_data_src_follow_the_zen4_caps_bit() -> None:
    words = {n: np.zeros(2, dtype=np.uint64) for n in NAMES}
    words["IBS_OP_DATA2"][:] = 0x43  # bits 7:6 = 1 and bits 2:0 = 3: extended 0b01011
    out = load_mapping().apply(words, np.concatenate([caps(zen4=True), caps()]),
                               np.zeros(2, dtype=bool), None)
    assert IbsMprofData2.get_data_src(out.data2).tolist() == [0b01011, int(DataSrc.DRAM)]


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = default_path().read_text()
    assert old in text, old
    path = tmp_path / "mapping.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old,new,needle", [
    ("from: IBS_OP_DATA3.ld_op", "from: IBS_OP_DATA3.no_such", "'IBS_OP_DATA3.no_such' is not"),
    ("from: IBS_OP_DATA3.ld_op", "from: IBS_OP_DATA3.op_mem_width", "4-bit value does not fit"),
    ('bits: "63"', 'bits: "64"', "bits '64' is not"),
    ("table: legacy_data_src}", "table: nope}", "table 'nope' is not"),
    ("in: [PEER_CCX_NEAR,", "in: [NEARBY,", "in must list values of the enum"),
    ("needs_caps: zen4", "needs_caps: zen9", "'zen9' is not an IBS_CAPS field"),
    ("target: IBS_MPROF_DATA3.phy_addr_valid", "target: IBS_MPROF_DATA3.sw_pf",
     "IBS_MPROF_DATA3.sw_pf is given twice"),
    ("target: IBS_MPROF_PHYADDR.phy_addr", "target: IBS_MPROF_CTL.period",
     "target 'IBS_MPROF_CTL.period' is not"),
    ("      - {from: IBS_OP_CTL.l3_miss_only}", "      - {from: IBS_OP_CTL.l3_miss_only, x: 1}",
     "unknown key 'x'"),
    ("    fact: Same bit 0 in both DATA3 registers.", "", "missing key 'fact'"),
    ("format: 1", "format: 2", "format must be 1"),
    ("when_any: [IBS_OP_DATA3.dc_miss_no_mab_alloc,", "when_any: [IBS_OP_DATA3.dc_miss_lat,",
     "not a one-bit IBS Op field"),
])
def test_a_broken_mapping_is_one_error_with_its_line(tmp_path: Path, old: str, new: str,
                                                      needle: str) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(InputError, match=re.escape(needle)) as caught:
        load_mapping(path)
    assert re.match(rf"{re.escape(str(path))}:\d+: ", str(caught.value)), caught.value


def test_a_mapping_must_give_what_the_driver_reads(tmp_path: Path) -> None:
    text = default_path().read_text()
    start = text.index("  - target: IBS_MPROF_PHYADDR.phy_addr")
    end = text.index("  - target: op.kernel")
    path = tmp_path / "m.yaml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(InputError, match="nothing gives IBS_MPROF_PHYADDR.phy_addr"):
        load_mapping(path)


def test_a_target_read_before_it_is_given_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, "      - from: IBS_MPROF_DATA2.data_src",
                  "      - from: IBS_MPROF_DATA3.sw_pf\n        bits: \"0\"\n"
                  "      - from: IBS_MPROF_DATA2.data_src")
    load_mapping(path)  # sw_pf is given before op.l3_miss: fine
    early = broken(tmp_path, "    from: IBS_OP_DATA2.rmt_node", "    from: IBS_MPROF_DATA3.ld_op")
    with pytest.raises(InputError, match="used before a line gives it"):
        load_mapping(early)


def test_every_line_says_its_hardware_fact() -> None:
    facts = load_mapping().facts()
    assert set(facts) >= {"IBS_MPROF_DATA2.data_src", "op.l3_miss", "op.kernel"}
    assert all(len(f.split()) >= 5 for f in facts.values())


def test_validity_bits_and_the_hardware_l3_filter_reach_the_driver() -> None:
    from generated.ibs_op import IbsOpCtl, IbsOpData3

    words = {n: np.zeros(3, dtype=np.uint64) for n in NAMES}
    words["IBS_OP_DATA3"][:] = [
        IbsOpData3(st_op=True, dc_lin_addr_valid=True).encode(),
        IbsOpData3(st_op=True, dc_phy_addr_valid=True).encode(),
        IbsOpData3(st_op=True, dc_lin_addr_valid=True, dc_phy_addr_valid=True).encode()]
    words["IBS_OP_CTL"][:] = [0, 0, IbsOpCtl(l3_miss_only=True, enable=True).encode()]
    out = load_mapping().apply(words, np.repeat(caps(zen4=True), 3), np.zeros(3, bool), None)
    assert [driver.sample_filter(int(d), 1) for d in out.data3] == [
        driver.PADDR_INVALID, driver.LADDR_INVALID, driver.PUSHED]
    # stores report no data source: a miss only when the hardware filter kept them
    assert out.l3_miss.tolist() == [False, False, True]
