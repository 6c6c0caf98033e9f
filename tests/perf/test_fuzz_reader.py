"""Hostile perf.data files: truncated, wrong magic, lying sizes, flipped bytes. The reader
either reads them or says one InputError; never another exception, never memory the file
did not pay for."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import InputError
from runtime.perf.ingest import load_samples
from runtime.topology import two_tier_topology
from tests.perf.helpers import op_sample, write_op_file

TOPO = two_tier_topology((0, 0))


def good_file(tmp: Path) -> bytes:
    return write_op_file(tmp / "g.data", [op_sample(0x100000 + i, i, cpu=i % 2)
                                          for i in range(40)], round_every=7).read_bytes()


def read(path: Path) -> None:
    try:
        load_samples(path, TOPO, block_bytes=1 << 16)
    except InputError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_read_or_fail_with_one_line(tmp_path: Path, data: st.DataObject) -> None:
    blob = bytearray(good_file(tmp_path))
    kind = data.draw(st.sampled_from(["truncate", "flip", "u64", "u16"]))
    at = data.draw(st.integers(0, len(blob) - 1))
    if kind == "truncate":
        blob = blob[:at]
    elif kind == "flip":
        blob[at] ^= data.draw(st.integers(1, 255))
    elif kind == "u64" and at + 8 <= len(blob):  # a size or offset field that lies
        struct.pack_into("<Q", blob, at, data.draw(st.sampled_from(
            [0, 1, 7, 2**31, 2**63, 2**64 - 1, len(blob) * 3])))
    elif kind == "u16" and at + 2 <= len(blob):  # a record size that lies
        struct.pack_into("<H", blob, at, data.draw(st.sampled_from([0, 1, 8, 0xFFFF])))
    path = tmp_path / "fuzz.data"
    path.write_bytes(bytes(blob))
    read(path)


def test_lying_counts_allocate_nothing_large(tmp_path: Path) -> None:
    """Every size field set to 2^63 in turn: refused before any allocation it asks for."""
    blob = good_file(tmp_path)
    path = tmp_path / "lie.data"
    tracemalloc.start()
    try:
        for at in range(8, 104, 8):  # every u64 of the file header
            lied = bytearray(blob)
            struct.pack_into("<Q", lied, at, 2**63)
            path.write_bytes(bytes(lied))
            read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
