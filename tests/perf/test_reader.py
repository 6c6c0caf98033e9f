"""The perf.data reader on files written field by field: framing across blocks, sample
fields by sample_type, attrs told apart by id, sideband, and the compiled walk."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import InputError
from runtime.perf import abi
from runtime.perf.framing import frame
from runtime.perf.reader import PerfDataReader
from runtime.perf.writer import PerfFile, WAttr, comm, finished_round, fork, mmap2, record, sample
from tests.perf.helpers import PMUS

Columns = dict[str, np.ndarray]


def read_all(path: Path, block_bytes: int = 1 << 22) -> tuple[PerfDataReader, Columns]:
    reader = PerfDataReader(path, block_bytes)
    cols: dict[str, list[np.ndarray]] = {}
    raws: list[bytes] = []
    for block in reader.blocks():
        s = block.samples
        for name in ("attr", "ip", "pid", "tid", "time", "addr", "cpu", "period", "malformed"):
            cols.setdefault(name, []).append(getattr(s, name))
        raws += [block.buf[a:a + n].tobytes() if a >= 0 else b""
                 for a, n in zip(s.raw_at.tolist(), s.raw_size.tolist(), strict=True)]
    reader.close()
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["raw"] = np.array(raws, dtype=object)
    return reader, out


ALL = (abi.SAMPLE_IDENTIFIER | abi.SAMPLE_IP | abi.SAMPLE_TID | abi.SAMPLE_TIME |
       abi.SAMPLE_ADDR | abi.SAMPLE_ID | abi.SAMPLE_STREAM_ID | abi.SAMPLE_CPU |
       abi.SAMPLE_PERIOD | abi.SAMPLE_READ | abi.SAMPLE_CALLCHAIN | abi.SAMPLE_RAW)


@pytest.mark.parametrize("block_bytes", [1 << 16, 1 << 22])
def test_fields_of_two_events_across_blocks(tmp_path: Path, block_bytes: int) -> None:
    a = WAttr(type=11, sample_type=ALL, ids=(7, 8), name="ibs_op//")
    b = WAttr(type=1, sample_type=abi.SAMPLE_IDENTIFIER | abi.SAMPLE_TIME | abi.SAMPLE_RAW,
              ids=(9,), name="cpu-clock")
    records, expect = [comm(a, 5, "prog", 3), fork(a, 6, 5, 4)], []
    rng = np.random.default_rng(1)
    for i in range(3000):
        which = a if i % 3 else b
        raw = bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8))
        chain = [int(x) for x in rng.integers(0, 1 << 40, int(rng.integers(0, 5)))]
        records.append(sample(which, ip=0x1000 + i, pid=5, tid=50 + i, time=10 * i, addr=i * 3,
                              cpu=i % 4, period=i + 1, raw=raw, callchain=chain,
                              sample_id=which.ids[-1]))
        expect.append((which, i, raw))
        if i % 500 == 499:
            records.append(finished_round())
    path = PerfFile([a, b], pmus=PMUS).write(tmp_path / "p.data", records)
    reader, got = read_all(path, block_bytes)
    assert reader.header.pmu_type("ibs_op") == 11 and reader.header.attrs[1].name == "cpu-clock"
    assert got["attr"].tolist() == [0 if w is a else 1 for w, _, _ in expect]
    assert got["time"].tolist() == [10 * i for _, i, _ in expect]
    on_a = got["attr"] == 0
    assert got["ip"][on_a].tolist() == [0x1000 + i for w, i, _ in expect if w is a]
    assert got["tid"][on_a].tolist() == [50 + i for w, i, _ in expect if w is a]
    assert got["cpu"][on_a].tolist() == [i % 4 for w, i, _ in expect if w is a]
    assert got["addr"][on_a].tolist() == [3 * i for w, i, _ in expect if w is a]
    for raw, (_, _, want) in zip(got["raw"], expect, strict=True):
        assert raw[:len(want)] == want and not raw[len(want):].strip(b"\0")
    assert not got["malformed"].any()
    assert reader.totals.rounds == 6 and reader.sideband.parents == {6: 5}
    assert [(c.pid, c.name, c.time) for c in reader.sideband.comms] == [(5, "prog", 3)]


def test_the_compiled_walk_equals_the_python_one() -> None:
    rng = np.random.default_rng(3)
    blob = b"".join(record(int(rng.integers(1, 80)), bytes(int(rng.integers(0, 300))))
                    for _ in range(400))
    buf = np.frombuffer(blob + bytes(100), dtype=np.uint8).copy()
    for end in (len(blob), len(blob) - 5, 1000):
        fast, slow = frame(buf, end), frame(buf, end, compiled=False)
        assert fast.stop == slow.stop and fast.status == slow.status
        for name in ("offsets", "sizes", "types", "misc"):
            assert getattr(fast, name).tolist() == getattr(slow, name).tolist()


def test_mmap_time_comes_from_the_trailer(tmp_path: Path) -> None:
    a = WAttr(type=11, sample_type=abi.SAMPLE_TID | abi.SAMPLE_TIME | abi.SAMPLE_CPU, ids=(1,))
    path = PerfFile([a], pmus=PMUS).write(tmp_path / "m.data", [
        mmap2(a, 9, 0x400000, 0x1000, 0x2000, "/bin/x", time=1234)])
    reader, _ = read_all(path)
    (m,) = reader.sideband.mmaps
    assert (m.pid, m.start, m.length, m.pgoff, m.filename, m.time) == \
        (9, 0x400000, 0x1000, 0x2000, "/bin/x", 1234)


def test_a_sample_longer_than_its_record_is_malformed_not_read(tmp_path: Path) -> None:
    a = WAttr(type=11, sample_type=abi.SAMPLE_TIME | abi.SAMPLE_RAW, ids=(1,))
    good = sample(a, time=5, raw=b"\x01" * 12)
    lying = bytearray(good)
    struct.pack_into("<I", lying, 16, 4000)  # RAW size past the record's end
    path = PerfFile([a], pmus=PMUS).write(tmp_path / "l.data", [good, bytes(lying)])
    _, got = read_all(path)
    assert got["malformed"].tolist() == [False, True]


@pytest.mark.parametrize("damage,needle", [
    (lambda b: b"XXXXXXXX" + b[8:], "not a perf.data file"),
    (lambda b: b"2ELIFREP" + b[8:], "big-endian"),
    (lambda b: b[:8] + struct.pack("<Q", 16) + b[16:], "pipe mode"),
    (lambda b: b[:60], "header is 60 bytes"),
    (lambda b: b[:-200], "reaches past the end of the file"),
    (lambda b: b[:16] + struct.pack("<Q", 7) + b[24:], "attr_size 7"),
])
def test_broken_files_are_one_error(tmp_path: Path, damage, needle: str) -> None:  # type: ignore[no-untyped-def]
    a = WAttr(type=11, sample_type=abi.SAMPLE_TIME, ids=(1,))
    blob = PerfFile([a], pmus=PMUS).to_bytes([sample(a, time=i) for i in range(20)])
    path = tmp_path / "bad.data"
    path.write_bytes(damage(blob))
    with pytest.raises(InputError, match=needle):
        reader = PerfDataReader(path)
        for _ in reader.blocks():
            pass


def test_a_record_size_below_its_header_stops_with_its_offset(tmp_path: Path) -> None:
    a = WAttr(type=11, sample_type=abi.SAMPLE_TIME, ids=(1,))
    records = [sample(a, time=1), struct.pack("<IHH", 9, 0, 4) + bytes(8)]
    path = PerfFile([a], pmus=PMUS).write(tmp_path / "z.data", records)
    data_at = PerfDataReader(path).header.data_offset
    with pytest.raises(InputError, match=f"offset {data_at + 16} has a size below"):
        for _ in PerfDataReader(path).blocks():
            pass
