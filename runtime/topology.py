"""The simulated machine's memory layout: NUMA nodes, tiers, PFN ranges, sections, CPUs.

A node is top tier (promotion target) or lower tier (tracked by pghot); its memory is DRAM or
CXL extension memory, which decides the DataSrc the profiler reports for its pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from generated.pghot import PAGES_PER_SECTION
from runtime.errors import InputError
from safeio.inputs import reason
from safeio.yamlsafe import YamlProblem, load_yaml, read_yaml_file

TIERS = ("top", "lower")
MEMORY_KINDS = ("dram", "cxl")
MAX_NODES = 1024
"""Node ids are 0..MAX_NODES - 1 (the kernel's MAX_NUMNODES with NODES_SHIFT 10)."""
MAX_CPUS = 8192
"""Most CPUs a topology file may list (the kernel's largest NR_CPUS): each is a modelled CPU."""


@dataclass(frozen=True)
class Node:
    nid: int
    tier: str
    memory: str
    pfn_start: int
    pfn_count: int

    @property
    def pfn_end(self) -> int:
        return self.pfn_start + self.pfn_count

    @property
    def toptier(self) -> bool:
        return self.tier == "top"


@dataclass(frozen=True)
class Topology:
    nodes: tuple[Node, ...]
    cpu_node: tuple[int, ...]  # cpu -> nid

    def __post_init__(self) -> None:
        spans = sorted((n.pfn_start, n.pfn_end, n.nid) for n in self.nodes)
        for (_, end, nid), (start, _, other) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise InputError(f"topology: PFN ranges of nodes {nid} and {other} overlap")
        nids = [n.nid for n in self.nodes]
        if len(set(nids)) != len(nids):
            raise InputError("topology: node ids must be unique")
        for cpu, nid in enumerate(self.cpu_node):
            if nid not in nids:
                raise InputError(f"topology: cpu {cpu} is on node {nid}, which does not exist")

    @property
    def cpus(self) -> range:
        return range(len(self.cpu_node))

    @cached_property
    def _by_nid(self) -> dict[int, Node]:
        return {n.nid: n for n in self.nodes}

    def node(self, nid: int) -> Node:
        return self._by_nid[nid]

    def node_of_pfn(self, pfn: int) -> int | None:
        """The node holding pfn, or None when no node does (the PFN is not online)."""
        for node in self.nodes:
            if node.pfn_start <= pfn < node.pfn_end:
                return node.nid
        return None

    def is_toptier(self, nid: int) -> bool:
        return self.node(nid).toptier

    def lower_nodes(self) -> list[Node]:
        return [n for n in self.nodes if not n.toptier]

    def sections(self, nid: int) -> Iterator[int]:
        """Section numbers whose first PFN belongs to node nid, ascending."""
        node = self.node(nid)
        first = -(-node.pfn_start // PAGES_PER_SECTION)
        for section in range(first, -(-node.pfn_end // PAGES_PER_SECTION)):
            if node.pfn_start <= section * PAGES_PER_SECTION < node.pfn_end:
                yield section


def home_cpus(cpu_node: Mapping[int, int],
              nodes: Sequence[Node]) -> tuple[tuple[int, ...], list[int], list[int]]:
    """Topology.cpu_node for CPUs 0 .. the highest a machine lists (cpu -> nid), by the one
    rule both node builders use (`topology --capture` from sysfs, ingest from a recording's
    header): a CPU on no node's list (offline) or on a node with no memory here (not in
    `nodes`) runs on the lowest-numbered top-tier node, or the lowest-numbered node if none is top.
    Returns the CPUs' nodes, the offline CPUs and the CPUs moved off memoryless nodes."""
    nids = {n.nid for n in nodes}
    tops = [n.nid for n in nodes if n.toptier]
    first = min(tops) if tops else min(nids) if nids else 0
    last = max(cpu_node) + 1 if cpu_node else 0
    offline = [c for c in range(last) if c not in cpu_node]
    moved = sorted(c for c, nid in cpu_node.items() if nid not in nids)
    return tuple(cpu_node[c] if cpu_node.get(c) in nids else first for c in range(last)), \
        offline, moved


def build_topology(dram_nodes: int, cxl_nodes: int, cpus_per_dram_node: int, dram_pages: int,
                   cxl_pages: int) -> Topology:
    """DRAM nodes 0.. (top tier, with CPUs), then CXL nodes (lower tier, CPU-less); every node
    starts on a section boundary, as memory blocks do."""
    nodes = []
    start = 0
    for nid in range(dram_nodes + cxl_nodes):
        dram = nid < dram_nodes
        count = dram_pages if dram else cxl_pages
        nodes.append(Node(nid, "top" if dram else "lower", "dram" if dram else "cxl", start,
                          count))
        start += -(-count // PAGES_PER_SECTION) * PAGES_PER_SECTION
    cpus = tuple(nid for nid in range(dram_nodes) for _ in range(cpus_per_dram_node))
    return Topology(tuple(nodes), cpus)


TWO_TIER_LOWER_PFN = 0x100000
"""First PFN of the lower (CXL) node of the two-tier test machine; both nodes are that big."""


def two_tier_topology(cpu_node: tuple[int, ...]) -> Topology:
    """Node 0 DRAM top tier PFNs 0x0-0xFFFFF, node 1 CXL lower tier 0x100000-0x1FFFFF: the
    machine `ibs-mprof replay` and `explore` use by default."""
    return Topology(nodes=(Node(0, "top", "dram", 0x0, TWO_TIER_LOWER_PFN),
                           Node(1, "lower", "cxl", TWO_TIER_LOWER_PFN, TWO_TIER_LOWER_PFN)),
                    cpu_node=cpu_node)


def default_replay_topology() -> Topology:
    """`ibs-mprof replay` default: the two-tier machine, CPUs 0-3 on node 0, 4-7 on node 1."""
    return two_tier_topology((0, 0, 0, 0, 1, 1, 1, 1))


def load_topology(path: Path) -> Topology:
    """YAML: nodes: [{nid, tier, memory, pfn_start, pfn_count}], cpus: [nid of cpu 0, ...]."""
    try:  # the spec's bounded loader: size limit, no tags, anchors or deep nesting
        data: Any = load_yaml(read_yaml_file(path).decode("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read topology: {reason(exc)}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read topology: not UTF-8 text ({exc})") from None
    except YamlProblem as exc:
        raise InputError(f"{path}:{exc.line}: cannot read topology: {exc.message}") from None
    if not isinstance(data, dict) or set(data) != {"nodes", "cpus"}:
        raise InputError(f"{path}: expected a mapping with exactly the keys 'nodes' and 'cpus'")
    nodes = []
    if isinstance(data["nodes"], list) and len(data["nodes"]) > MAX_NODES:
        raise InputError(f"{path}: {len(data['nodes'])} nodes; at most {MAX_NODES} are allowed")
    for index, item in enumerate(data["nodes"] if isinstance(data["nodes"], list) else [None]):
        keys = {"nid", "tier", "memory", "pfn_start", "pfn_count"}
        if not isinstance(item, dict) or set(item) != keys:
            raise InputError(f"{path}: nodes[{index}] needs exactly the keys {sorted(keys)}")
        if item["tier"] not in TIERS or item["memory"] not in MEMORY_KINDS:
            raise InputError(f"{path}: nodes[{index}]: tier must be one of {TIERS}, memory one "
                             f"of {MEMORY_KINDS}")
        numbers = [item[k] for k in ("nid", "pfn_start", "pfn_count")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers):
            raise InputError(f"{path}: nodes[{index}]: nid, pfn_start, pfn_count must be "
                             "non-negative integers")
        if item["nid"] >= MAX_NODES:
            raise InputError(f"{path}: nodes[{index}]: nid {item['nid']} is not below "
                             f"{MAX_NODES}")
        nodes.append(Node(item["nid"], item["tier"], item["memory"], item["pfn_start"],
                          item["pfn_count"]))
    cpus = data["cpus"]
    if not isinstance(cpus, list) or not cpus or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in cpus):
        raise InputError(f"{path}: cpus must be a non-empty list of node ids (one per CPU)")
    if len(cpus) > MAX_CPUS:
        raise InputError(f"{path}: {len(cpus)} cpus; at most {MAX_CPUS} are allowed")
    try:
        return Topology(tuple(nodes), tuple(cpus))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
