"""Topology: node lookup, sections, the replay default, and YAML loading errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from generated.pghot import PAGES_PER_SECTION
from runtime.errors import InputError
from runtime.topology import Node, Topology, default_replay_topology, load_topology
from runtime.vmstat import Vmstat
from tests.conftest import run_cli


def test_default_replay_topology_matches_the_interface() -> None:
    topo = default_replay_topology()
    assert topo.node_of_pfn(0xFFFFF) == 0 and topo.node_of_pfn(0x100000) == 1
    assert topo.node_of_pfn(0x200000) is None
    assert [topo.cpu_node[c] for c in topo.cpus] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert topo.is_toptier(0) and not topo.is_toptier(1)
    sections = list(topo.sections(1))
    assert sections[0] == 0x100000 // PAGES_PER_SECTION and len(sections) == 32


def test_overlapping_nodes_are_refused() -> None:
    with pytest.raises(InputError, match="overlap"):
        Topology((Node(0, "top", "dram", 0, 100), Node(1, "lower", "cxl", 50, 100)), (0,))


def test_load_topology_and_use_it_in_replay(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text("nodes:\n"
                    "  - {nid: 0, tier: top, memory: dram, pfn_start: 0, pfn_count: 4096}\n"
                    "  - {nid: 2, tier: lower, memory: cxl, pfn_start: 4096, pfn_count: 4096}\n"
                    "cpus: [0, 0]\n")
    topo = load_topology(path)
    assert topo.node_of_pfn(5000) == 2 and len(topo.cpu_node) == 2
    csv = tmp_path / "s.csv"
    csv.write_text("cpu,time,ctl,data2,data3,linaddr,phyaddr\n"
                   "1,5,0xF0271,0x40,0x60001,0x1000,0x1388000\n")
    result = run_cli("replay", str(csv), "--topology", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert '"records": [[1, 5000, 0, 5]]' in result.stdout


@pytest.mark.parametrize("text,needle", [
    ("nodes: []\n", "exactly the keys 'nodes' and 'cpus'"),
    ("nodes: [{nid: 0}]\ncpus: [0]\n", "nodes[0] needs exactly the keys"),
    ("nodes:\n  - {nid: 0, tier: middle, memory: dram, pfn_start: 0, pfn_count: 1}\ncpus: [0]\n",
     "tier must be one of"),
    ("nodes:\n  - {nid: 0, tier: top, memory: dram, pfn_start: 0, pfn_count: 1}\ncpus: [3]\n",
     "cpu 0 is on node 3"),
    ("nodes: [\n", "cannot read topology"),
])
def test_bad_topology_is_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    csv = tmp_path / "s.csv"
    csv.write_text("cpu,time,ctl,data2,data3,linaddr,phyaddr\n")
    result = run_cli("replay", str(csv), "--topology", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr


def test_vmstat_prints_proc_form_and_rejects_unknown_names() -> None:
    stat = Vmstat()
    stat.count("hwhint_total_events", 3)
    stat.count_node(0, "pgpromote_success", 2)
    text = stat.proc_text()
    assert "hwhint_total_events 3\n" in text and "pgpromote_success 2\n" in text
    with pytest.raises(KeyError):
        stat.count("hwhint_made_up")
