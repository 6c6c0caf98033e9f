"""topology --capture: a fake sysfs tree of a DRAM + CXL machine, errors, and this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from runtime.errors import InputError
from runtime.perf.cli import add_arguments, command
from runtime.perf.sysfs import capture, topology_yaml
from runtime.topology import load_topology

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
