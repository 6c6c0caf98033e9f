"""`perf report -D` text, as users paste it: hex dump lines and IBS op samples.

Two things come from such text. Hex dump lines (`0000:  ff 07 00 00 ...`, with or without
perf's leading dots and trailing ASCII column) give bytes: a PERF_SAMPLE_RAW payload, or a
whole PERF_RECORD_SAMPLE whose payload ends it. And each sample's block gives an op
sample: the PERF_RECORD_SAMPLE line (cpu, time, pid/tid, ip, cpumode) followed by the
decoded IBS lines perf prints for it (`ibs_op_ctl:`, `IbsOpRip:`, ... each opening with
the MSR's full value in hex). perf leaves a line out where the value is not valid
(IbsDCPhysAd without DcPhyAddrValid, ibs_op_data2 under erratum 1293): such words read 0.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from runtime.errors import InputError
from runtime.perf import abi

_DUMP = re.compile(r"^[\s.]*([0-9a-fA-F]{4,8}):((?: {1,3}[0-9a-fA-F]{2}){1,16})(?:\s{2,}.*)?\s*$")
"""A dump line: offset, then 1-16 bytes each after 1-3 spaces; a trailing ASCII column
starts after two or more spaces (so its characters are never read as bytes)."""
_SAMPLE = re.compile(
    r"^(?:(?P<cpu>\d+) (?P<time>\d+) )?0x(?P<off>[0-9a-f]+) \[0x(?P<size>[0-9a-f]+)\]: "
    r"PERF_RECORD_SAMPLE\((?P<flags>[^)]*)\): (?P<pid>-?\d+)/(?P<tid>-?\d+): "
    r"0x(?P<ip>[0-9a-f]+)")
_WORD_LINES = {
    "ibs_op_ctl": "IBS_OP_CTL", "IbsOpRip": "IBS_OP_RIP", "ibs_op_data": "IBS_OP_DATA",
    "ibs_op_data2": "IBS_OP_DATA2", "ibs_op_data3": "IBS_OP_DATA3",
    "IbsDCLinAd": "IBS_DC_LINAD", "IbsDCPhysAd": "IBS_DC_PHYSAD",
    "IbsBrTarget": "IBS_BR_TARGET",
}
"""perf's decoded line name -> the register whose raw value opens it."""
_WORD = re.compile(r"^(\w+):\s+([0-9a-fA-F]{16})\b(.*)$")
MAX_LINE = 1 << 16
"""Longest text line read (perf's lines are a few hundred characters)."""


def dump_bytes(lines: Iterable[str], where: str) -> bytes | None:
    """The bytes of the hex dump lines among `lines` (None if there are none). Offsets must
    follow on from the bytes before them, so a lost or doubled line is an error."""
    out = bytearray()
    for number, line in enumerate(lines, 1):
        match = _DUMP.match(line)
        if not match:
            continue
        offset = int(match.group(1), 16)
        if offset != len(out):
            raise InputError(f"{where}: dump line {number} starts at offset {offset:#x} but "
                             f"{len(out):#x} bytes came before it")
        out += bytes.fromhex(match.group(2).replace(" ", ""))
    return bytes(out) if out else None


def payload_of_record(data: bytes) -> bytes:
    """The PERF_SAMPLE_RAW payload ending a whole PERF_RECORD_SAMPLE dump, else data as is.
    A record is recognised by its header (type 9, size = the bytes given); the payload is
    the tail whose u32 size word in front of it states its length (IBS samples put RAW
    last, as `perf record --raw-samples` of ibs_op or ibs_fetch does)."""
    if len(data) < 16 or struct.unpack_from("<IHH", data)[0] != abi.RECORD_SAMPLE or \
            struct.unpack_from("<IHH", data)[2] != len(data):
        return data
    from runtime.decode import perf_raw_layout

    for words in range(3, 10):
        size = 4 + 8 * words
        if size + 4 + abi.RECORD_HEADER_BYTES > len(data):
            break
        if struct.unpack_from("<I", data, len(data) - size - 4)[0] != size:
            continue
        tail = data[-size:]
        try:
            perf_raw_layout(tail)
        except InputError:
            continue
        return tail
    raise InputError("--perf-raw: a PERF_RECORD_SAMPLE dump whose last bytes are no IBS "
                     "payload (record it with --raw-samples)")


@dataclass
class DumpSample:
    """One op sample of perf report -D text: what its sample line and IBS lines said."""

    line: int
    cpu: int
    time: int
    pid: int
    tid: int
    ip: int
    misc: int
    words: dict[str, int] = field(default_factory=dict)
    zen4: bool = False
    """perf printed L3MissOnly, which it does only with the Zen4 IBS extensions."""


def parse_report(lines: Iterable[str], where: str) -> list[DumpSample]:
    """The op samples of perf report -D text, in the order they appear."""
    samples: list[DumpSample] = []
    current: DumpSample | None = None
    for number, text in enumerate(lines, 1):
        if len(text) > MAX_LINE:
            raise InputError(f"{where}:{number}: a line of {len(text)} characters; perf "
                             f"report -D lines are far shorter")
        line = text.strip()
        match = _SAMPLE.match(line)
        if match:
            if match.group("cpu") is None:
                raise InputError(f"{where}:{number}: this sample line has no cpu and time; "
                                 "record with -T (timestamps) and --sample-cpu")
            misc = int(match.group("flags").split("0x")[-1], 16) if "0x" in match.group(
                "flags") else 0
            current = DumpSample(number, int(match.group("cpu")), int(match.group("time")),
                                 int(match.group("pid")), int(match.group("tid")),
                                 int(match.group("ip"), 16), misc)
            samples.append(current)
            continue
        word = _WORD.match(line)
        if word and word.group(1) in _WORD_LINES:
            if current is None:
                raise InputError(f"{where}:{number}: {word.group(1)} before any "
                                 "PERF_RECORD_SAMPLE line")
            current.words[_WORD_LINES[word.group(1)]] = int(word.group(2), 16)
            if word.group(1) == "ibs_op_ctl" and "L3MissOnly" in word.group(3):
                current.zen4 = True
    op = [s for s in samples if "IBS_OP_CTL" in s.words]
    if not op:
        raise InputError(f"{where}: no IBS op sample (a PERF_RECORD_SAMPLE line followed by "
                         "ibs_op_ctl: ...) in this perf report -D text")
    return op
