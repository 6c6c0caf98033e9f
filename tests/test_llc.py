"""The LLC model: Che's approximation agrees with a literal set-associative LRU simulation."""

from __future__ import annotations

import numpy as np

from runtime.llc import SetAssociativeLru, che_miss_probability
from runtime.pageruns import PageRuns

PAGES = 1 << 14  # 64 MiB region
HOT = PAGES // 16


def gups_probs() -> np.ndarray:
    probs = np.full(PAGES, 0.1 / PAGES)
    probs[:HOT] += 0.9 / HOT
    return probs


def test_che_matches_lru_simulation_for_a_hot_set() -> None:
    probs = gups_probs()
    che = che_miss_probability(PageRuns.from_array(probs), 4 << 20).expand()
    rng = np.random.default_rng(1)
    cache = SetAssociativeLru(4 << 20)
    pages = rng.choice(PAGES, size=600_000, p=probs)
    lines = rng.integers(0, 64, size=pages.size)
    miss = np.fromiter((cache.access(int(p) * 4096 + int(ln) * 64)
                        for p, ln in zip(pages, lines, strict=True)), bool, pages.size)
    warm = slice(200_000, None)  # after the cache has filled
    hot = pages[warm] < HOT
    assert abs(miss[warm][hot].mean() - che[0]) < 0.02
    assert abs(miss[warm][~hot].mean() - che[-1]) < 0.02
    assert che[0] < 0.5 < che[-1]  # the hot set is largely cache-resident, the rest is not


def test_everything_fitting_in_the_cache_never_misses() -> None:
    probs = PageRuns.constant(64, 1 / 64)
    assert not che_miss_probability(probs, 32 << 20).expand().any()


def test_runs_give_what_the_same_pages_one_by_one_give() -> None:
    """Che over runs weighs each run by its length: the per-page answer, computed per run."""
    probs = gups_probs()
    runs = che_miss_probability(PageRuns.from_array(probs), 4 << 20)
    pages = PageRuns(np.arange(PAGES, dtype=np.int64), probs, PAGES)  # one run per page
    each = che_miss_probability(pages, 4 << 20)
    assert runs.starts.size == 2
    assert np.allclose(runs.expand(), each.expand(), rtol=1e-9)
