"""Capture the machine's memory topology from sysfs, as the YAML runtime/topology.py reads.

Per NUMA node (/sys/devices/system/node/nodeN): its CPUs (cpulist), its memory blocks
(the memoryM links, M x block_size_bytes from /sys/devices/system/memory) and its
MemTotal (meminfo, for the reader). A node's PFN range spans its first to its last block
(holes inside stay in the range, as the kernel's node span does). Tiers come from
/sys/devices/virtual/memory_tiering: the tier holding a node with CPUs is the top tier
(as the kernel's top-tier rule puts CPU nodes' DRAM there) and every slower tier is lower.
Without memory tiering, nodes with CPUs are top tier and CPU-less nodes lower. The memory
kind is an assumption: top tier DRAM, lower tier CXL; the YAML says so in a comment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from generated.ibs_mprof import PAGE_SHIFT
from runtime.errors import InputError
from runtime.topology import MAX_CPUS, MAX_NODES, Node, Topology, home_cpus

NODE_DIR = "devices/system/node"
MEMORY_DIR = "devices/system/memory"
TIER_DIR = "devices/virtual/memory_tiering"
MAX_SYSFS_TEXT = 1 << 16
"""Longest sysfs file read (a cpulist or nodelist is a line)."""
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def read_text(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_SYSFS_TEXT).decode("ascii", "replace").strip()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def parse_list(text: str, where: str, limit: int) -> list[int]:
    """A kernel list ("0-3,8,10-11"; empty for none) as sorted ints, at most `limit`."""
    out: list[int] = []
    for part in filter(None, text.replace("\n", ",").split(",")):
        match = _RANGE.fullmatch(part.strip())
        if not match:
            raise InputError(f"{where}: {part!r} is not a number or a range like 0-3")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) else lo
        if hi < lo or len(out) + hi - lo + 1 > limit:
            raise InputError(f"{where}: the list {text[:40]!r} is reversed or holds more "
                             f"than {limit} entries")
        out.extend(range(lo, hi + 1))
    return sorted(set(out))


@dataclass(frozen=True)
class NodeInfo:
    nid: int
    cpus: tuple[int, ...]
    blocks: tuple[int, ...]
    mem_total_kb: int


def _numbered(folder: Path, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)")
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise InputError(f"{folder}: cannot list: {exc.strerror or exc}") from None
    return sorted(int(m.group(1)) for n in names if (m := pattern.fullmatch(n)))


def read_nodes(root: Path) -> tuple[int, list[NodeInfo]]:
    """(memory block size in bytes, every node with its CPUs, blocks and MemTotal)."""
    nodes_dir = root / NODE_DIR
    block_text = read_text(root / MEMORY_DIR / "block_size_bytes")
    if not re.fullmatch(r"(0x)?[0-9a-fA-F]{1,16}", block_text):
        raise InputError(f"{root / MEMORY_DIR / 'block_size_bytes'}: expected a hex size, got "
                         f"{block_text[:40]!r}")
    block_size = int(block_text, 16)
    if block_size < 1 << PAGE_SHIFT or block_size & (block_size - 1):
        raise InputError(f"{root / MEMORY_DIR}: block size {block_size:#x} is not a power of "
                         "two of at least one page")
    infos = []
    for nid in _numbered(nodes_dir, "node"):
        if nid >= MAX_NODES:
            raise InputError(f"{nodes_dir}: node{nid}; node ids are below {MAX_NODES}")
        folder = nodes_dir / f"node{nid}"
        cpus = parse_list(read_text(folder / "cpulist"), str(folder / "cpulist"), MAX_CPUS)
        meminfo = read_text(folder / "meminfo") if (folder / "meminfo").exists() else ""
        total = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
        infos.append(NodeInfo(nid, tuple(cpus), tuple(_numbered(folder, "memory")),
                              int(total.group(1)) if total else 0))
    if not infos:
        raise InputError(f"{nodes_dir}: no nodeN folder (is this a sysfs tree?)")
    return block_size, infos


def read_tiers(root: Path) -> list[list[int]]:
    """The nodes of each memory tier, fastest (lowest tier id) first; [] without tiering."""
    folder = root / TIER_DIR
    if not folder.is_dir():
        return []
    return [parse_list(read_text(folder / f"memory_tier{t}" / "nodelist"),
                       str(folder / f"memory_tier{t}" / "nodelist"), MAX_NODES)
            for t in _numbered(folder, "memory_tier")]


def capture(root: Path = Path("/sys")) -> tuple[Topology, list[str]]:
    """The topology sysfs under root describes, and notes on what was assumed."""
    block_size, infos = read_nodes(root)
    tiers = read_tiers(root)
    notes = []
    cpu_nodes = {i.nid for i in infos if i.cpus}
    if tiers:
        top_tier = next((t for t in tiers if cpu_nodes & set(t)), tiers[0])
        top = set(top_tier)
        notes.append(f"tiers from {TIER_DIR}: top tier nodes {sorted(top)}")
    else:
        top = cpu_nodes
        notes.append(f"no {TIER_DIR}: nodes with CPUs are top tier, CPU-less nodes lower")
    notes.append("memory kind assumed: top tier dram, lower tier cxl")
    pages_per_block = block_size >> PAGE_SHIFT
    nodes = []
    for info in infos:
        if not info.blocks:
            notes.append(f"node {info.nid} has no memory blocks: left out")
            continue
        start = info.blocks[0] * pages_per_block
        count = (info.blocks[-1] + 1) * pages_per_block - start
        toptier = info.nid in top
        nodes.append(Node(info.nid, "top" if toptier else "lower", "dram" if toptier else "cxl",
                          start, count))
    cpu_node: dict[int, int] = {cpu: i.nid for i in infos for cpu in i.cpus}
    if not cpu_node:
        raise InputError(f"{root / NODE_DIR}: no node lists any CPU")
    cpus, offline, moved = home_cpus(cpu_node, nodes)
    if offline:
        notes.append(f"CPUs {offline[:8]}{'...' if len(offline) > 8 else ''} are on no node "
                     f"(offline): put on node {cpus[offline[0]]}")
    if moved:  # CPUs of a memoryless node run on the nearest node with memory
        notes.append(f"nodes {sorted({cpu_node[c] for c in moved})} have CPUs but no memory: "
                     f"their CPUs are put on node {cpus[moved[0]]}")
    try:
        return Topology(tuple(nodes), cpus), notes
    except InputError as exc:
        raise InputError(f"{root / NODE_DIR}: {exc} (the topology format holds one PFN range "
                         "per node; these nodes' memory blocks interleave)") from None


def topology_yaml(topology: Topology, notes: list[str], source: str) -> str:
    """The YAML load_topology reads, with comments saying where it came from."""
    lines = [f"# captured by `ibs-mprof topology --capture` from {source}"]
    lines += [f"# {note}" for note in notes]
    lines.append("nodes:")
    for node in topology.nodes:
        lines.append(f"  - {{nid: {node.nid}, tier: {node.tier}, memory: {node.memory}, "
                     f"pfn_start: {node.pfn_start:#x}, pfn_count: {node.pfn_count:#x}}}")
    lines.append(f"cpus: [{', '.join(str(n) for n in topology.cpu_node)}]")
    return "\n".join(lines) + "\n"
