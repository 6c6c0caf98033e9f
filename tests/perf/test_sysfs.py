"""topology --capture: a fake sysfs tree of a DRAM + CXL machine, errors, and this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import InputError
from runtime.perf.cli import add_arguments, command
from runtime.perf.header import MemNode, NumaNode, PerfHeader
from runtime.perf.ingest import header_topology
from runtime.perf.sysfs import capture, parse_list, topology_yaml
from runtime.topology import Node, home_cpus, load_topology

BLOCK = 128 << 20  # 0x8000000 bytes, 32768 pages


def fake_sysfs(root: Path, nodes: dict[int, tuple[str, list[int]]],
               tiers: dict[int, str] | None = None) -> Path:
    """nodes: nid -> (cpulist, memory block numbers); tiers: tier id -> nodelist."""
    (root / "devices/system/memory").mkdir(parents=True)
    (root / "devices/system/memory/block_size_bytes").write_text(f"{BLOCK:x}\n")
    for nid, (cpus, blocks) in nodes.items():
        folder = root / f"devices/system/node/node{nid}"
        folder.mkdir(parents=True)
        (folder / "cpulist").write_text(cpus + "\n")
        (folder / "meminfo").write_text(f"Node {nid} MemTotal:  {len(blocks) * 131072} kB\n")
        for block in blocks:
            (folder / f"memory{block}").mkdir()
    for tier, nodelist in (tiers or {}).items():
        folder = root / f"devices/virtual/memory_tiering/memory_tier{tier}"
        folder.mkdir(parents=True)
        (folder / "nodelist").write_text(nodelist + "\n")
    return root


def test_dram_and_cxl_nodes_with_tiers(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path, {0: ("0-3", [0, 1, 2, 5, 6, 7]), 1: ("4-7", [8, 9]),
                                 2: ("", list(range(16, 24)))},
                      tiers={4: "0-1", 22: "2"})
    topo, notes = capture(root)
    assert [(n.nid, n.tier, n.memory) for n in topo.nodes] == [
        (0, "top", "dram"), (1, "top", "dram"), (2, "lower", "cxl")]
    assert (topo.nodes[0].pfn_start, topo.nodes[0].pfn_count) == (0, 8 * 32768)  # hole kept
    assert (topo.nodes[2].pfn_start, topo.nodes[2].pfn_count) == (16 * 32768, 8 * 32768)
    assert topo.cpu_node == (0, 0, 0, 0, 1, 1, 1, 1)
    assert any("memory kind assumed" in n for n in notes)
    out = tmp_path / "machine.yaml"
    out.write_text(topology_yaml(topo, notes, str(root)))
    assert load_topology(out) == topo  # what ingest --topology reads back


def test_without_tiering_cpu_less_nodes_are_lower(tmp_path: Path) -> None:
    topo, notes = capture(fake_sysfs(tmp_path, {0: ("0-1", [0, 1]), 1: ("", [4, 5])}))
    assert [n.tier for n in topo.nodes] == ["top", "lower"]
    assert any("no devices/virtual/memory_tiering" in n for n in notes)


@pytest.mark.parametrize("nodes,needle", [
    ({0: ("0-x", [0])}, "'0-x' is not a number"),
    ({0: ("0", [0, 4]), 1: ("1", [2])}, "interleave"),
    ({0: ("", [0])}, "no node lists any CPU"),
])
def test_bad_trees_are_one_error(tmp_path: Path, nodes: dict[int, tuple[str, list[int]]],
                                 needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        capture(fake_sysfs(tmp_path, nodes))


def test_command_prints_yaml_and_refuses_a_missing_root(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    root = fake_sysfs(tmp_path / "sys", {0: ("0", [0])})
    assert command(parser.parse_args(["--capture", "--sysfs", str(root)])) == 0
    assert "nodes:\n  - {nid: 0, tier: top" in capsys.readouterr().out
    with pytest.raises(InputError, match="is not a folder"):
        command(parser.parse_args(["--capture", "--sysfs", str(tmp_path / "nope")]))
    with pytest.raises(InputError, match="give --capture"):
        command(parser.parse_args([]))


@pytest.mark.skipif(not Path("/sys/devices/system/node/node0").is_dir(),
                    reason="this machine has no /sys/devices/system/node")
def test_this_machines_sysfs(tmp_path: Path) -> None:
    topo, notes = capture(Path("/sys"))
    assert topo.nodes and topo.cpu_node and any(n.toptier for n in topo.nodes)
    out = tmp_path / "here.yaml"
    out.write_text(topology_yaml(topo, notes, "/sys"))
    assert load_topology(out) == topo


MACHINES = [
    # nid -> (cpulist, memory blocks): offline CPUs 2-3 and a memoryless node 2 with CPUs 4-5
    {0: ("0-1", list(range(8))), 1: ("", list(range(8, 16))), 2: ("4-5", [])},
    # the CPU-less node first; CPUs 4-5 offline, CPU 6 on memoryless node 2
    {0: ("", list(range(4))), 1: ("0-3", list(range(4, 8))), 2: ("6", [])},
    # two nodes with CPUs: a memoryless node's CPUs go to the lower-numbered one
    {0: ("0", list(range(4))), 1: ("1", list(range(4, 8))), 2: ("", list(range(8, 12))),
     3: ("2-3", [])},
]


@pytest.mark.parametrize("machine", MACHINES)
def test_capture_and_a_recordings_header_build_the_same_machine(
        tmp_path: Path, machine: dict[int, tuple[str, list[int]]]) -> None:
    """`topology --capture` (sysfs without tiering) and ingest (a recording's NUMA_TOPOLOGY and
    MEM_TOPOLOGY) describe one machine alike: the same nodes and tiers, and offline CPUs and a
    memoryless node's CPUs on the same node (topology.home_cpus, the rule both use)."""
    captured, _ = capture(fake_sysfs(tmp_path, machine))
    header = PerfHeader(path=Path("r.data"), file_size=0, data_offset=0, data_size=0, attrs=(),
                        features=frozenset(), mem_block_size=BLOCK,
                        mem_nodes=tuple(MemNode(nid, np.array(blocks, dtype=np.uint64))
                                        for nid, (_, blocks) in machine.items()),
                        numa_nodes=tuple(NumaNode(nid, 0, 0, cpus)
                                         for nid, (cpus, _) in machine.items()))
    found = header_topology(header)
    assert found is not None
    assert found[0] == captured
    lowest_top = min(nid for nid, (cpus, blocks) in machine.items() if cpus and blocks)
    listed = {c for cpus, blocks in machine.values() if blocks for c in parse_list(cpus, "", 64)}
    assert all(nid == lowest_top for cpu, nid in enumerate(captured.cpu_node)
               if cpu not in listed)


def test_home_cpus_without_a_top_node_uses_the_first_node() -> None:
    nodes = [Node(3, "lower", "cxl", 0, 10), Node(1, "lower", "cxl", 10, 10)]
    assert home_cpus({0: 3, 2: 5}, nodes) == ((3, 1, 1), [1], [2])
