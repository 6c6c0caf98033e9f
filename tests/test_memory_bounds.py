"""Memory bounds of the large-host model: pghot records cost 1 byte a page in default mode.

A 1 TiB CXL tier has 268,435,456 4-KiB pages; its default-mode records must take 256 MiB (as
the kernel's), and building the machine must not cost much beyond that (measured in a child
process, so other tests' allocations do not count).
"""

from __future__ import annotations

import json

from tests.conftest import ROOT, run_python

TIB_PAGES = (1 << 40) >> 12


def test_one_tib_cxl_tier_records_take_one_byte_a_page() -> None:
    code = (
        "import json\n"
        "from runtime.memory import Memory\n"
        "from runtime.pghot.core import Pghot\n"
        "from runtime.pghot.tunables import Tunables\n"
        "from runtime.topology import build_topology\n"
        "from runtime.vmstat import Vmstat\n"
        f"topo = build_topology(1, 1, 2, 1 << 22, {TIB_PAGES})\n"
        "pghot = Pghot(topo, Memory(topo), Vmstat(), Tunables(enabled_sources=3))\n"
        "rec = pghot.records\n"
        "nbytes = sum(rec.words_view(s).nbytes for s in rec.sections())\n"
        # VmHWM, not ru_maxrss: Linux carries the spawning process's RSS (here pytest's, which
        # grows over a suite run) into a child's ru_maxrss across exec.
        "from runtime.bench import peak_rss_bytes\n"
        "peak = peak_rss_bytes()\n"
        "print(json.dumps({'bytes': nbytes, 'peak': peak}))\n")
    result = run_python(code, ROOT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["bytes"] == TIB_PAGES  # exactly 1 byte per lower-tier page
    assert out["peak"] < out["bytes"] + (200 << 20), f"peak RSS {out['peak'] >> 20} MiB"


def test_placement_arrays_follow_the_pages_in_use_not_the_tier() -> None:
    """Page placement on the same 1 TiB tier: arrays for the sections that hold pages only."""
    from runtime.memory import Memory, place_pages
    from runtime.topology import build_topology

    memory = Memory(build_topology(1, 1, 2, 1 << 22, TIB_PAGES))
    place_pages(memory, 100_000, "cxl")  # 4 sections of the tier's 8192
    assert memory.placed_pages == 100_000
    assert memory.nbytes < 8 << 20, f"placement takes {memory.nbytes >> 20} MiB"
