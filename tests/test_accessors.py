"""Generated accessors: round trips (hypothesis), vectorised == scalar, checks that name fields."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generated._base import RegisterValue
from generated.cpuid import IbsCaps
from generated.data_src import DataSrc
from generated.ibs_mprof import IBS_MPROF_SAMPLE_PERIOD, IbsMprofCtl, IbsMprofData2
from generated.ibs_op import IbsOpCtl
from generated.pghot import PghotRecordDefault
from generated.registry import CPUID_OUTPUTS, MSRS, REGISTERS

ALL = sorted(REGISTERS.values(), key=lambda c: c.NAME)


def field_strategy(cls: type[RegisterValue], name: str) -> st.SearchStrategy[Any]:
    info = next(f for f in cls.FIELDS if f.name == name)
    sample = cls.decode(0) if cls.RESERVED_POLICY == "must_be_zero" else cls.decode(cls.RESET)
    if isinstance(getattr(sample, name), bool):
        return st.booleans()
    # Values that survive encoding: split fields have always-zero low bits.
    full = cls.decode(cls.RESERVED_MASK ^ ((1 << cls.WIDTH) - 1)) if cls.RESERVED_POLICY == \
        "must_be_zero" else cls.decode((1 << cls.WIDTH) - 1)
    mask = int(getattr(full, name))
    return st.integers(0, (1 << info.width) - 1).map(lambda v: v & mask)


def raw_strategy(cls: type[RegisterValue]) -> st.SearchStrategy[int]:
    keep = ((1 << cls.WIDTH) - 1) & ~(cls.RESERVED_MASK if cls.RESERVED_POLICY == "must_be_zero"
                                      else 0)
    return st.integers(0, (1 << cls.WIDTH) - 1).map(lambda v: v & keep)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.NAME)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_encode_decode_round_trip(cls: type[RegisterValue], data: st.DataObject) -> None:
    raw = data.draw(raw_strategy(cls))
    value = cls.decode(raw)
    assert value.encode() == raw
    assert cls.decode(value.encode()) == value
    kwargs = {f.name: data.draw(field_strategy(cls, f.name)) for f in cls.FIELDS}
    built = value.replace(**kwargs)
    assert cls.decode(built.encode()) == built


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.NAME)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_vectorised_getters_and_setters_equal_scalar(cls: type[RegisterValue],
                                                     data: st.DataObject) -> None:
    raws = data.draw(st.lists(raw_strategy(cls), min_size=1, max_size=8))
    array = np.array(raws, dtype=np.uint64)
    for info in cls.FIELDS:
        got = getattr(cls, f"get_{info.name}")(array)
        assert [int(v) for v in got] == [int(getattr(cls.decode(r), info.name)) for r in raws]
        new = [data.draw(field_strategy(cls, info.name)) for _ in raws]
        written = getattr(cls, f"set_{info.name}")(array, np.array(new, dtype=np.uint64))
        expected = [cls.decode(r).replace(**{info.name: v}).encode()
                    for r, v in zip(raws, new, strict=True)]
        assert [int(v) for v in written] == expected


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.NAME)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_encode_array_equals_scalar_encode_of_those_fields(cls: type[RegisterValue],
                                                            data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 6))
    names = data.draw(st.lists(st.sampled_from([f.name for f in cls.FIELDS]), unique=True))
    values = {name: [data.draw(field_strategy(cls, name)) for _ in range(n)] for name in names}
    # one-bit fields go in as bool arrays (no range check needed), the others as uint64
    arrays = {name: np.array(v, dtype=bool if isinstance(v[0], bool) else np.uint64)
              for name, v in values.items()}
    got = cls.encode_array(**arrays)  # type: ignore[attr-defined]
    expected = [cls.decode(0).replace(**{k: v[i] for k, v in values.items()}).encode()
                for i in range(n)]
    assert [int(v) for v in np.broadcast_to(got, (n,))] == expected


def test_encode_array_checks_every_field() -> None:
    ok = IbsMprofData2.encode_array(data_src=np.array([DataSrc.DRAM, DataSrc.EXT_MEM],
                                                      dtype=np.uint64),
                                    rmt_node=np.array([True, False]))
    assert ok.tolist() == [IbsMprofData2(data_src=DataSrc.DRAM, rmt_node=True).encode(),
                           IbsMprofData2(data_src=DataSrc.EXT_MEM).encode()]
    with pytest.raises(ValueError, match=r"IBS_MPROF_CTL\.period: value 0x11 "):
        IbsMprofCtl.encode_array(enable=np.ones(2, dtype=bool),
                                 period=np.array([16, 17], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"IBS_MPROF_CTL\.period: value 0x1 "):
        IbsMprofCtl.encode_array(period=np.array([True]))  # a bool 1 is no period either
    assert int(IbsMprofCtl.encode_array()) == 0


def test_seed_ctl_value_for_period_10000() -> None:
    ctl = IbsMprofCtl(period=IBS_MPROF_SAMPLE_PERIOD, cnt_ctl=True, enable=True,
                      l3_miss_only=True)
    assert ctl.encode() == 0xB0271
    assert IbsMprofCtl.decode(0xB0271) == ctl


@pytest.mark.parametrize("period,field_bits", [
    (0x90, 0x0000009), (100_000, 0x000186A), (1_000_000, 0x000F424), (10_000, 0x0000271),
    (10_000_000, 0x0908968), (0x100000, 0x0100000), (0xFFFFF0, 0x0F0FFFF),
    (0x7FFFFF0, 0x7F0FFFF),
])
def test_op_period_encoding_matches_reference_table(period: int, field_bits: int) -> None:
    # ibs-registers.md section 5.2: period -> IBS_OP_CTL[26:0].
    assert IbsOpCtl(period=period).encode() & 0x7FFFFFF == field_bits
    assert IbsOpCtl.get_period(np.array([field_bits], dtype=np.uint64))[0] == period


def test_data_src_joins_both_parts_and_tolerates_unknown_encodings() -> None:
    assert IbsMprofData2.decode(0x40).data_src is DataSrc.EXT_MEM
    assert IbsMprofData2.decode(0x03).data_src is DataSrc.DRAM
    odd = IbsMprofData2.decode(0xC7).data_src
    assert int(odd) == 31 and odd.name == "UNKNOWN_31"
    assert IbsMprofData2(data_src=DataSrc.EXT_MEM).encode() == 0x40


def test_range_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"IBS_MPROF_CTL\.period"):
        IbsMprofCtl(period=10001)
    with pytest.raises(ValueError, match=r"IBS_MPROF_CTL\.period .* outside"):
        IbsMprofCtl(period=1 << 27)
    with pytest.raises(ValueError, match=r"PGHOT_RECORD_DEFAULT\.freq"):
        PghotRecordDefault(freq=4)
    with pytest.raises(ValueError, match=r"IBS_MPROF_CTL\.enable must be a bool"):
        IbsMprofCtl(enable=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"IBS_MPROF_CTL\.period: value 0x11 "):
        IbsMprofCtl.set_period(np.zeros(2, dtype=np.uint64), np.array([16, 17], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"PGHOT_RECORD_DEFAULT\.freq: value 0x4 "):
        PghotRecordDefault.set_freq(np.zeros(3, dtype=np.uint64), np.array([1, 4, 2], np.uint64))
    empty = np.zeros(0, dtype=np.uint64)
    assert PghotRecordDefault.set_freq(empty, empty).size == 0


def test_reserved_policy_is_explicit() -> None:
    with pytest.raises(ValueError, match="reserved bits"):
        IbsMprofCtl.decode(1 << 40)  # must_be_zero: a WRMSR like this would #GP
    kept = IbsMprofData2.decode(1 << 40 | 3)  # preserve: newer hardware may set them
    assert kept.reserved_bits == 1 << 40 and kept.encode() == 1 << 40 | 3


def test_addresses_and_cpuid_location_come_from_the_spec() -> None:
    assert [hex(a) for a in sorted(MSRS) if 0xC0010380 <= a <= 0xC0010385] == [
        hex(0xC0010380 + i) for i in range(6)]
    assert CPUID_OUTPUTS[(0x8000001B, 0, "eax")] is IbsCaps
    assert IbsCaps.decode(1 << 18).mem_profiler
    assert (IbsCaps.LEAF, IbsCaps.SUBLEAF, IbsCaps.OUTPUT) == (0x8000001B, 0, "eax")
