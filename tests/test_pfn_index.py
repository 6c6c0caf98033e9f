"""The fast engine's PFN -> page index follows migrations exactly, in both forms."""

from __future__ import annotations

import numpy as np
import pytest

import runtime.fast_engine
from runtime.fast_engine import PfnIndex
from runtime.memory import Memory, place_pages
from runtime.topology import build_topology


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("moves", [
    [(0, 32768, 5), (1, 32769, 6)],  # lower tier to top tier: PFN ranges apart
    [(0, 32768, 5), (1, 32769, 40000), (2, 32770, 4)],  # interleaved ranges, no PFN shared
    [(0, 32768, 5), (2, 5, 32768), (1, 32769, 5)],  # a PFN freed and taken again
    [(0, 32768, 5), (0, 5, 40000)],  # a page moved twice: its first PFN is free again
], ids=["apart", "disjoint", "reused", "twice"])
def test_apply_equals_moving_one_by_one(dense: bool, moves: list[tuple[int, int, int]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not dense:
        monkeypatch.setattr(runtime.fast_engine, "DENSE_PFN_LIMIT", 0)
    topo = build_topology(1, 1, 1, 32768, 32768)
    memory = Memory(topo)
    place_pages(memory, 3, "cxl")
    index = PfnIndex(memory, 65536)
    truth = dict(memory.page_of)
    for page, old, new in moves:
        truth.pop(old, None)
        truth[new] = page
    cols = [np.array(c, dtype=np.int64) for c in zip(*moves, strict=True)]
    index.apply(*cols)
    pfns = np.arange(65536, dtype=np.int64)
    want = np.full(65536, -1, dtype=np.int64)
    want[list(truth)] = list(truth.values())
    assert index.lookup(pfns).tolist() == want.tolist()
