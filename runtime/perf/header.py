"""A perf.data file's header: the attrs with their ids and the feature sections we use.

Everything here is small and read with bounded reads: the fixed header, the attrs table and
each attr's id list, then the feature sections that tell which PMU an attr belongs to
(PMU_MAPPINGS), the event names (EVENT_DESC), the CPU (CPUID, NRCPUS) and the memory layout
(MEM_TOPOLOGY, NUMA_TOPOLOGY). Every offset and size the file states is checked against the
file before it is followed, so a lying file is one InputError naming the field, never a
read past the end or an allocation the size field asked for.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from runtime.errors import InputError
from runtime.perf import abi

MAX_ATTRS = 4096
"""Most attrs (events) a file may declare; perf records a handful."""
MAX_ATTR_SIZE = 4096
"""Largest attr entry accepted (perf_event_attr is 136 bytes today, plus the ids section)."""
MAX_IDS = 1 << 20
"""Most sample ids over all attrs (one per event per CPU or thread)."""
MAX_FEATURE_BYTES = 1 << 24
"""Largest feature section parsed (16 MiB; perf writes a few KiB)."""
MAX_LIST = 1 << 16
"""Most entries in one feature's list (PMUs, events, nodes)."""


@dataclass(frozen=True)
class Attr:
    """One event of the recording: its perf_event_attr fields and its sample ids."""

    index: int
    type: int
    config: int
    sample_type: int
    read_format: int
    flags: int
    config1: int
    config2: int
    branch_sample_type: int
    ids: tuple[int, ...]
    name: str = ""

    @property
    def sample_id_all(self) -> bool:
        return bool(self.flags & abi.ATTR_FLAG_SAMPLE_ID_ALL)


@dataclass(frozen=True)
class MemNode:
    """MEM_TOPOLOGY: the memory blocks (of block_size bytes) a node holds."""

    node: int
    blocks: npt.NDArray[np.int64]


@dataclass(frozen=True)
class NumaNode:
    """NUMA_TOPOLOGY: a node's memory (kB) and CPU list as perf wrote them."""

    node: int
    mem_total_kb: int
    mem_free_kb: int
    cpus: str


@dataclass(frozen=True)
class PerfHeader:
    path: Path
    file_size: int
    data_offset: int
    data_size: int
    attrs: tuple[Attr, ...]
    features: frozenset[int]
    pmu_types: dict[int, str] = field(default_factory=dict)
    """attr.type -> PMU name (PMU_MAPPINGS), e.g. the dynamic type of ibs_op."""
    strings: dict[str, str] = field(default_factory=dict)
    """HOSTNAME, OSRELEASE, ARCH, CPUDESC, CPUID by feature name."""
    nr_cpus_online: int = 0
    nr_cpus_avail: int = 0
    mem_block_size: int = 0
    mem_nodes: tuple[MemNode, ...] = ()
    numa_nodes: tuple[NumaNode, ...] = ()

    def pmu_type(self, prefix: str) -> int | None:
        """The attr type of the PMU whose name starts with prefix (as perf matches ibs_op)."""
        return next((t for t, n in sorted(self.pmu_types.items()) if n.startswith(prefix)),
                    None)

    def cpu_family_model(self) -> tuple[str, int, int] | None:
        """(vendor, family, model) from the CPUID string "Vendor,family,model,stepping"."""
        parts = self.strings.get("CPUID", "").split(",")
        if len(parts) < 3 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return parts[0], int(parts[1]), int(parts[2])


class Cursor:
    """Bounded little-endian reads over one feature section's bytes; running past its end is
    an InputError naming the section."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data = data
        self.pos = 0
        self.where = where

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise InputError(f"{self.where}: needs {count} more bytes at offset {self.pos} "
                             f"but the section holds {len(self.data)}")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.take(8))[0]
        return value

    def count(self, what: str, limit: int = MAX_LIST) -> int:
        """A u32 list length, refused above `limit` before anything is allocated."""
        value = self.u32()
        if value > limit:
            raise InputError(f"{self.where}: {value} {what}; at most {limit} are read")
        return value

    def string(self) -> str:
        """A perf header string: u32 length, then that many bytes, NUL-padded."""
        raw = self.take(self.u32())
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def read_at(handle: BinaryIO, offset: int, size: int, what: str, file_size: int) -> bytes:
    """size bytes at offset, after checking that the file holds them."""
    if offset < 0 or size < 0 or offset + size > file_size:
        raise InputError(f"{what} (offset {offset}, {size} bytes) reaches past the end of the "
                         f"file ({file_size} bytes)")
    handle.seek(offset)
    data = handle.read(size)
    if len(data) != size:
        raise InputError(f"{what}: the file ended after {len(data)} of {size} bytes")
    return data


def read_header(handle: BinaryIO, path: Path) -> PerfHeader:
    """Parse the header of an open perf.data file; InputError for anything we cannot trust."""
    file_size = os.fstat(handle.fileno()).st_size
    head = handle.read(abi.FILE_HEADER.itemsize)
    magic = head[:8]
    if magic == abi.MAGIC_SWAPPED:
        raise InputError(f"{path}: a big-endian perf.data file; IBS recordings come from x86 "
                         "(little-endian) machines")
    if magic == b"PERFFILE":
        raise InputError(f"{path}: perf.data format version 1 (PERFFILE); only PERFILE2 is "
                         "read")
    if magic != abi.MAGIC:
        raise InputError(f"{path}: not a perf.data file (it starts with {magic!r}, expected "
                         f"{abi.MAGIC!r})")
    if len(head) >= 16 and struct.unpack_from("<Q", head, 8)[0] == abi.PIPE_HEADER_SIZE:
        raise InputError(f"{path}: written by `perf record -o -` (pipe mode); record to a "
                         "file, or convert it with `perf inject -i IN -o OUT`")
    if len(head) < abi.FILE_HEADER.itemsize:
        raise InputError(f"{path}: header is {len(head)} bytes; a perf.data header is "
                         f"{abi.FILE_HEADER.itemsize}")
    hdr = np.frombuffer(head, dtype=abi.FILE_HEADER)[0]
    if int(hdr["size"]) < abi.FILE_HEADER.itemsize:
        raise InputError(f"{path}: header size field says {int(hdr['size'])}; expected at "
                         f"least {abi.FILE_HEADER.itemsize}")
    features = _feature_bits(hdr["features"])
    if abi.FEAT_COMPRESSED in features:
        raise InputError(f"{path}: recorded with -z (zstd-compressed records), which this "
                         "reader does not decompress; record again without -z")
    attrs = _read_attrs(handle, path, hdr, file_size)
    data_offset, data_size = int(hdr["data"]["offset"]), int(hdr["data"]["size"])
    read_at(handle, data_offset, 0, f"{path}: header: data section", file_size)
    if data_offset + data_size > file_size:
        raise InputError(f"{path}: header: data section (offset {data_offset}, {data_size} "
                         f"bytes) reaches past the end of the file ({file_size} bytes)")
    header = PerfHeader(path=path, file_size=file_size, data_offset=data_offset,
                        data_size=data_size, attrs=attrs, features=frozenset(features))
    return _read_features(handle, header, features)


def _feature_bits(words: npt.NDArray[np.uint64]) -> list[int]:
    return [bit for bit in range(256) if int(words[bit >> 6]) >> (bit & 63) & 1]


def _read_attrs(handle: BinaryIO, path: Path, hdr: np.void, file_size: int) -> tuple[Attr, ...]:
    attr_size = int(hdr["attr_size"])
    if not abi.ATTR_MIN_SIZE + abi.SECTION.itemsize <= attr_size <= MAX_ATTR_SIZE:
        raise InputError(f"{path}: header: attr_size {attr_size} is outside "
                         f"{abi.ATTR_MIN_SIZE + abi.SECTION.itemsize}..{MAX_ATTR_SIZE}")
    offset, size = int(hdr["attrs"]["offset"]), int(hdr["attrs"]["size"])
    if size % attr_size or not 0 < size // attr_size <= MAX_ATTRS:
        raise InputError(f"{path}: header: attrs section of {size} bytes is not 1..{MAX_ATTRS} "
                         f"entries of {attr_size} bytes")
    table = read_at(handle, offset, size, f"{path}: header: attrs section", file_size)
    attrs = []
    total_ids = 0
    for index in range(size // attr_size):
        entry = table[index * attr_size:(index + 1) * attr_size]
        body = entry[:attr_size - abi.SECTION.itemsize]
        ids_offset, ids_size = struct.unpack_from("<QQ", entry, attr_size - abi.SECTION.itemsize)
        values = {name: int.from_bytes(body[at:at + width], "little") if at + width <= len(body)
                  else 0 for name, at, width in abi.ATTR_FIELDS}
        if ids_size % 8 or total_ids + ids_size // 8 > MAX_IDS:
            raise InputError(f"{path}: attr {index}: ids section of {ids_size} bytes is not a "
                             f"list of u64 ids (at most {MAX_IDS} in all)")
        total_ids += ids_size // 8
        raw_ids = read_at(handle, ids_offset, ids_size, f"{path}: attr {index}: ids",
                          file_size)
        ids = tuple(int(v) for v in np.frombuffer(raw_ids, dtype="<u8"))
        attrs.append(Attr(index=index, ids=ids, type=values["type"], config=values["config"],
                          sample_type=values["sample_type"], read_format=values["read_format"],
                          flags=values["flags"], config1=values["config1"],
                          config2=values["config2"],
                          branch_sample_type=values["branch_sample_type"]))
    return tuple(attrs)


def _read_features(handle: BinaryIO, header: PerfHeader, features: list[int]) -> PerfHeader:
    """Parse the feature sections we use; the others are skipped unread."""
    table_at = header.data_offset + header.data_size
    path = header.path
    if not features:
        return header
    table = read_at(handle, table_at, len(features) * abi.SECTION.itemsize,
                    f"{path}: feature section table", header.file_size)
    sections = np.frombuffer(table, dtype=abi.SECTION)
    parsed: dict[str, object] = {}
    strings: dict[str, str] = {}
    for feat, section in zip(features, sections, strict=True):
        name = abi.FEATURE_NAMES.get(feat)
        if name is None:
            continue
        size = int(section["size"])
        where = f"{path}: feature {name}"
        if size > MAX_FEATURE_BYTES:
            raise InputError(f"{where}: {size} bytes; at most {MAX_FEATURE_BYTES} are read")
        cur = Cursor(read_at(handle, int(section["offset"]), size, where, header.file_size),
                     where)
        if feat in (abi.FEAT_HOSTNAME, abi.FEAT_OSRELEASE, abi.FEAT_ARCH, abi.FEAT_CPUDESC,
                    abi.FEAT_CPUID):
            strings[name] = cur.string()
        elif feat == abi.FEAT_NRCPUS:
            parsed["nr_cpus_avail"], parsed["nr_cpus_online"] = cur.u32(), cur.u32()
        elif feat == abi.FEAT_PMU_MAPPINGS:
            parsed["pmu_types"] = {cur.u32(): cur.string()
                                   for _ in range(cur.count("PMU mappings"))}
        elif feat == abi.FEAT_EVENT_DESC:
            parsed["names"] = _event_names(cur)
        elif feat == abi.FEAT_MEM_TOPOLOGY:
            parsed["mem_block_size"], parsed["mem_nodes"] = _mem_topology(cur)
        elif feat == abi.FEAT_NUMA_TOPOLOGY:
            parsed["numa_nodes"] = tuple(
                NumaNode(cur.u32(), cur.u64(), cur.u64(), cur.string())
                for _ in range(cur.count("NUMA nodes")))
    names = parsed.pop("names", {})
    assert isinstance(names, dict)
    attrs = tuple(_named(a, names) for a in header.attrs)
    return PerfHeader(path=header.path, file_size=header.file_size,
                      data_offset=header.data_offset, data_size=header.data_size, attrs=attrs,
                      features=header.features, strings=strings,
                      **parsed)  # type: ignore[arg-type]


def _named(attr: Attr, names: dict[int, str]) -> Attr:
    name = next((names[i] for i in attr.ids if i in names), "")
    return Attr(**{**attr.__dict__, "name": name})


def _event_names(cur: Cursor) -> dict[int, str]:
    """EVENT_DESC: per event its attr, its name and its ids -> {id: name}."""
    count, attr_size = cur.count("events"), cur.u32()
    if attr_size > MAX_ATTR_SIZE:
        raise InputError(f"{cur.where}: attr size {attr_size} is over {MAX_ATTR_SIZE}")
    names: dict[int, str] = {}
    for _ in range(count):
        cur.take(attr_size)
        nr_ids = cur.count("ids", MAX_IDS)
        name = cur.string()
        for _ in range(nr_ids):
            names[cur.u64()] = name
    return names


def _mem_topology(cur: Cursor) -> tuple[int, tuple[MemNode, ...]]:
    """MEM_TOPOLOGY: version, block size, then per node a bitmap of its memory blocks."""
    cur.u64()  # version
    block_size, count = cur.u64(), cur.u64()
    if count > MAX_LIST:
        raise InputError(f"{cur.where}: {count} nodes; at most {MAX_LIST} are read")
    nodes = []
    for _ in range(count):
        node, bits = cur.u64(), cur.u64()
        words = (bits + 63) // 64
        bitmap = np.frombuffer(cur.take(words * 8), dtype="<u8")
        blocks = np.flatnonzero(np.unpackbits(bitmap.view(np.uint8), bitorder="little"))
        nodes.append(MemNode(node, blocks[blocks < bits].astype(np.int64)))
    return block_size, tuple(nodes)
