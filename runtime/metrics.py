"""Metrics of a run against ground truth, as defined in the field's evaluation method.

`Collector` watches an engine at every timeline tick (fast-tier hit ratio, ready set, heatmap);
`summarise` turns what it saw plus the engine's logs into the report's numbers:
- ready set D(t) and promoted set P vs the hot set H*: precision, recall, F1, access-weighted
  recall;
- fast-tier hit ratio (FTHR, share of L3-miss accesses served by the top tier) vs an oracle
  holding the top-K pages (placement efficiency = FTHR / FTHR*);
- time to detect / promote each hot page (median, p90), recovery after a hot-set shift;
- promotions useful / wasted / ping-pong; every sample accounted for; sample-to-record lag;
  modelled CPU overhead from stated per-NMI, per-record and per-migration costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from runtime.driver import DRIVER_OUTCOMES
from runtime.fast_engine import FastEngine
from runtime.groundtruth import PhaseTruth
from runtime.pghot.core import RECORD_OUTCOMES
from runtime.reference_engine import KernelState, ReferenceEngine
from runtime.workloads import PAGE_BYTES, phase_of

Engine = ReferenceEngine | FastEngine
HEATMAP_BUCKETS = 64
USEFUL_MIN_ACCESSES = 2  # a promotion is useful if the page is hot and gets >= 2 accesses ...
PING_PONG_WINDOWS = 10  # ... ping-pong: promoted, demoted, promoted again within 10 windows


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None, "count": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(arr)), "p90": float(np.quantile(arr, 0.9)),
            "max": float(arr.max()), "count": int(arr.size)}


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _toptier(engine: KernelState, pages: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether each page sits on a top-tier node now."""
    pfns = engine.memory.pfns_of(pages)
    top = np.zeros(pages.size, dtype=bool)
    for node in engine.topology.nodes:
        if node.toptier:
            top |= (pfns >= node.pfn_start) & (pfns < node.pfn_end)
    return top


@dataclass
class Collector:
    """Engine observer: one timeline row and one heatmap row per tick."""

    truths: list[PhaseTruth]
    pages: int
    lower_ranges: list[tuple[int, int]]  # PFN ranges of the lower tier, ascending
    window_ms: int  # pghot's frequency window: the span of the detected set D(t)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    heatmap: list[list[int]] = field(default_factory=list)
    _page_on_top: npt.NDArray[np.bool_] | None = None
    _promos_seen: int = 0
    _demos_seen: int = 0
    _records_seen: int = 0
    _last_ready_ms: npt.NDArray[np.float64] | None = None
    _ready_seen: int = 0

    def phase_at(self, t_ms: float) -> int:
        return phase_of([t.start_ms for t in self.truths], t_ms)

    def on_top(self, engine: KernelState) -> npt.NDArray[np.bool_]:
        """Which workload pages sit on the top tier now: read from the placement once, then
        only for the pages the promotion and demotion logs say moved since the last look."""
        if self._page_on_top is None:
            self._page_on_top = _toptier(engine, np.arange(self.pages, dtype=np.int64))
            self._promos_seen = len(engine.pghot.promotions)
            self._demos_seen = len(engine.demoter.log) if engine.demoter is not None else 0
            return self._page_on_top
        moved = [engine.pghot.promotions.column("page", self._promos_seen)]
        self._promos_seen = len(engine.pghot.promotions)
        if engine.demoter is not None:
            moved.append(engine.demoter.log.column("page", self._demos_seen))
            self._demos_seen = len(engine.demoter.log)
        pages = np.concatenate(moved)
        pages = pages[pages < self.pages]
        self._page_on_top[pages] = _toptier(engine, pages)  # where each is now
        return self._page_on_top

    def lower_bucket(self, pfns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Heatmap bucket of each PFN over the concatenated lower-tier ranges (-1: not lower)."""
        total = max(sum(end - start for start, end in self.lower_ranges), 1)
        bucket = np.full(pfns.shape, -1, dtype=np.int64)
        base = 0
        for start, end in self.lower_ranges:
            # offset over the concatenated ranges, then its bucket, where inside this range
            offset = pfns + (base - start)
            inside = (pfns >= start) & (pfns < end)
            np.copyto(bucket, offset * HEATMAP_BUCKETS // total, where=inside)
            base += end - start
        return bucket

    def __call__(self, engine: KernelState) -> None:
        now = engine.now_ms
        truth = self.truths[self.phase_at(now)]
        top = self.on_top(engine)
        on_top = int(np.count_nonzero(top))
        if on_top > truth.k:  # then FTHR could beat the oracle: K is not what the run allows
            raise AssertionError(f"{on_top} workload pages on the top tier at {now:g} ms, more "
                                 f"than the oracle's K = {truth.k} (top_tier_capacity)")
        detected = self._recently_ready(engine, now)
        log = engine.records
        new = log.column("pfn", self._records_seen)
        self._records_seen = len(log)
        buckets = self.lower_bucket(new)
        row = np.bincount(buckets[buckets >= 0], minlength=HEATMAP_BUCKETS)
        self.heatmap.append([int(v) for v in row[:HEATMAP_BUCKETS]])
        # D(t): pages the detector marked READY within the last pghot window (kmigrated
        # consumes READY records within one poll, so the instantaneous bit set is ~empty).
        # Only hot pages can be hits or considered: work on the hot set's entries.
        hot, rate = truth.hot_pages, truth.hot_rate_per_s
        hit = detected[hot]
        top_hot = top[hot]
        considered = ~top_hot | hit
        stats = engine.vmstat
        hits, ready = int(np.count_nonzero(hit)), int(np.count_nonzero(detected))
        self.timeline.append({
            "t_ms": round(now, 3),
            "phase": self.phase_at(now),
            "fthr": truth.fthr(top),
            "fthr_oracle": truth.oracle_fthr,
            "hot_pages_lower": truth.hot_count - int(np.count_nonzero(top_hot)),
            "ready_pages": ready,
            "ready_precision": _ratio(hits, ready),
            "ready_recall": _ratio(hits, int(np.count_nonzero(considered))),
            "ready_weighted_recall": _ratio(float(rate[hit].sum()), float(rate[considered].sum())),
            "promotions": len(engine.pghot.promotions),
            "demotions": len(engine.demoter.log) if engine.demoter else 0,
            "hwhint_total_events": stats.get("hwhint_total_events"),
            "hwhint_useful_events": stats.get("hwhint_useful_events"),
            "pghot_recorded_accesses": stats.get("pghot_recorded_accesses"),
            "ring_full_drops": engine.driver.outcomes["ring_full"],
        })

    def _recently_ready(self, engine: KernelState, now: float) -> npt.NDArray[np.bool_]:
        """Which pages a pghot_record_access call made READY in (now - window, now].

        Each page keeps the drain time of its latest READY call, brought up to date from the
        records logged since the last tick, so a record is read once, not once per tick of
        the window it stays in."""
        if self._last_ready_ms is None:
            self._last_ready_ms = np.full(self.pages, -np.inf)
        log = engine.records
        start = self._ready_seen
        self._ready_seen = len(log)
        ready = log.column("ready", start).astype(bool)
        pages = log.column("page", start)[ready]
        drain = log.column("drain_ms", start)[ready]
        inside = (pages >= 0) & (pages < self.pages)
        np.maximum.at(self._last_ready_ms, pages[inside], drain[inside])
        detected: npt.NDArray[np.bool_] = self._last_ready_ms > now - self.window_ms
        return detected


def summarise(engine: Engine, collector: Collector, costs: dict[str, float],
              duration_ms: float,
              progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Every number the report shows, JSON-ready. `progress` hears the fraction of phases
    done (a run of thousands of phases takes a while here)."""
    truths = collector.truths
    window_ms = collector.window_ms
    cpus = len(engine.cpus)
    top_now = collector.on_top(engine)
    moves = _Moves(engine, top_now)
    log = engine.records
    pages_col = log.column("page")
    ready_col = log.column("ready").astype(bool)
    drain_col = log.column("drain_ms")
    sample_col = log.column("sample_ms")
    ticks = _Ticks(collector.timeline)
    phases = []
    prev_hot: npt.NDArray[np.bool_] | None = None
    for i, truth in enumerate(truths):
        phases.append(_phase_metrics(i, truth, prev_hot, moves, log, ticks))
        prev_hot = truth.hot
        if progress is not None:
            progress((i + 1) / len(truths))
    sampling = _sampling(engine, cpus, duration_ms)
    lag = _quantiles((drain_col - sample_col).tolist())
    overhead = _overhead(engine, costs, cpus, duration_ms)
    migrations = _migrations(engine, truths, moves, window_ms, duration_ms)
    final = truths[-1]
    fthr = final.fthr(top_now)
    result = {
        "final": {
            "fthr": fthr, "fthr_oracle": final.oracle_fthr,
            "placement_efficiency": _ratio(fthr, final.oracle_fthr),
            "hot_pages": final.hot_count,
            "hot_pages_on_top": int((final.hot & top_now).sum()),
        },
        "phases": phases,
        "migrations": migrations,
        "sampling": sampling,
        "lag_ms": lag,
        "overhead": overhead,
        "vmstat": engine.vmstat.as_dict(),
        "first_ready_pages": int(np.unique(pages_col[ready_col]).size),
    }
    result["verdict"] = verdict(result)
    return result


class _Moves:
    """Every promotion and demotion as columns, so that per-phase questions (where was each
    page at t, what was promoted in a phase) are array operations, not a pass over Python
    rows per phase (which made a run of thousands of phases take minutes to summarise)."""

    def __init__(self, engine: KernelState, top_now: npt.NDArray[np.bool_]) -> None:
        self.top_now = top_now
        self.promo_time = engine.pghot.promotions.column("time_ms")
        self.promo_page = engine.pghot.promotions.column("page")
        demoter = engine.demoter
        self.demo_time = demoter.log.column("time_ms") if demoter else np.zeros(0, np.int64)
        self.demo_page = demoter.log.column("page") if demoter else np.zeros(0, np.int64)
        time = np.concatenate([self.promo_time, self.demo_time])
        page = np.concatenate([self.promo_page, self.demo_page])
        down = np.r_[np.zeros(self.promo_time.size, bool), np.ones(self.demo_time.size, bool)]
        # Oldest first; of events at the same time, the last logged first (promotions were
        # logged before demotions): the first event of a page from t on says where it was at t.
        order = np.lexsort((-np.arange(time.size), time))
        self._time, self._page, self._down = time[order], page[order], down[order]
        by_page = np.argsort(self._page, kind="stable")
        same = self._page[by_page[1:]] == self._page[by_page[:-1]]
        self._prev = np.full(time.size, -1, dtype=np.int64)  # the page's event before, or -1
        self._prev[by_page[1:][same]] = by_page[:-1][same]

    def on_top_at(self, t_ms: float) -> npt.NDArray[np.bool_]:
        """Pages on the top tier at t_ms: today's view with every move from t_ms on undone
        (a page's first move from then on tells where it was)."""
        top = self.top_now.copy()
        start = int(np.searchsorted(self._time, t_ms, side="left"))
        first = start + np.flatnonzero(self._prev[start:] < start)
        pages = self._page[first]
        inside = pages < top.size
        top[pages[inside]] = self._down[first][inside]
        return top

    def promoted_in(self, start: float, end: float) -> npt.NDArray[np.int64]:
        """Indices (log order) of the promotions made in [start, end)."""
        return np.flatnonzero((self.promo_time >= start) & (self.promo_time < end))


class _Ticks:
    """The timeline's times and FTHR as arrays (rows are in time order)."""

    def __init__(self, timeline: list[dict[str, Any]]) -> None:
        self.rows = timeline
        self.t_ms = np.array([r["t_ms"] for r in timeline], dtype=np.float64)
        self.fthr = np.array([r["fthr"] for r in timeline], dtype=np.float64)

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        lo, hi = np.searchsorted(self.t_ms, [start, end], side="left")
        return self.rows[lo:hi]


def _phase_metrics(index: int, truth: PhaseTruth, prev_hot: npt.NDArray[np.bool_] | None,
                   moves: _Moves, log: Any, ticks: _Ticks) -> dict[str, Any]:
    start, end = truth.start_ms, truth.end_ms
    newly_hot = truth.hot if prev_hot is None else truth.hot & ~prev_hot
    hot_pages = np.flatnonzero(newly_hot)
    # Pages promoted during this phase and still up at its end.
    made = moves.promo_page[moves.promoted_in(start, end)]
    promoted = np.unique(made[made < truth.hot.size])
    on_top_end = moves.on_top_at(end)
    p_set = promoted[on_top_end[promoted]]
    tp = int(truth.hot[p_set].sum()) if p_set.size else 0
    hot_total = truth.hot_count
    hot_top = int((truth.hot & on_top_end).sum())
    precision = _ratio(tp, p_set.size)
    recall = _ratio(hot_top, hot_total)
    rate = truth.rate_per_s
    weighted = _ratio(float(rate[truth.hot & on_top_end].sum()), float(rate[truth.hot].sum()))
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall > 0 else None)
    ttd, ttp = _times_to(hot_pages, start, end, moves, log)
    rows = ticks.between(start, end)
    ready_prec = [r["ready_precision"] for r in rows if r["ready_precision"] is not None]
    ready_rec = [r["ready_recall"] for r in rows if r["ready_recall"] is not None]
    ready_w = [r["ready_weighted_recall"] for r in rows if r["ready_weighted_recall"] is not None]
    recovery = _recovery(ticks, start) if index > 0 else None
    return {
        "label": truth.label, "start_ms": start, "end_ms": end,
        "hot_pages": hot_total, "theta_accesses_per_s": truth.theta_per_s,
        "oracle_fthr": truth.oracle_fthr,
        "fthr_end": truth.fthr(on_top_end),
        "promoted": {"pages": int(p_set.size), "precision": precision, "recall": recall,
                     "f1": f1, "weighted_recall": weighted},
        "ready": {"precision_mean": _mean(ready_prec), "recall_mean": _mean(ready_rec),
                  "weighted_recall_mean": _mean(ready_w)},
        "time_to_detect_ms": ttd, "time_to_promote_ms": ttp,
        "recovery_ms": recovery,
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _first_times(pages: npt.NDArray[np.int64], times: npt.NDArray[Any],
                 of: npt.NDArray[np.int64], start: float) -> list[float]:
    """For each page of `of` (in order) that is in `pages`: the time of its first entry
    there, minus start."""
    seen, first = np.unique(pages, return_index=True)
    at = np.searchsorted(seen, of)
    found = at < seen.size
    found[found] = seen[at[found]] == of[found]
    values: list[float] = (times[first[at[found]]].astype(np.float64) - start).tolist()
    return values


def _times_to(hot_pages: npt.NDArray[np.int64], start: float, end: float, moves: _Moves,
              log: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    pages = log.column("page")
    ready = log.column("ready").astype(bool)
    drain = log.column("drain_ms")
    mask = ready & (drain >= start) & (drain < end)
    made = moves.promoted_in(start, end)
    on_top_start = moves.on_top_at(start)
    candidates = hot_pages[~on_top_start[hot_pages]]
    ttd = _first_times(pages[mask], drain[mask], candidates, start)
    ttp = _first_times(moves.promo_page[made], moves.promo_time[made], candidates, start)
    n = int(candidates.size)
    return ({**_quantiles(ttd), "fraction": _ratio(len(ttd), n), "of_pages": n,
             "values": sorted(round(v, 1) for v in ttd)},
            {**_quantiles(ttp), "fraction": _ratio(len(ttp), n), "of_pages": n,
             "values": sorted(round(v, 1) for v in ttp)})


def _recovery(ticks: _Ticks, shift_ms: float) -> float | None:
    """Time after shift_ms until FTHR is back to 90% of its last value before it."""
    before = int(np.searchsorted(ticks.t_ms, shift_ms, side="left"))
    if before == 0:
        return None
    steady = ticks.fthr[before - 1]
    after = int(np.searchsorted(ticks.t_ms, shift_ms, side="right"))
    back = np.flatnonzero(ticks.fthr[after:] >= 0.9 * steady)
    return float(ticks.t_ms[after + back[0]] - shift_ms) if back.size else None


def _migrations(engine: Engine, truths: list[PhaseTruth], moves: _Moves, window_ms: int,
                duration_ms: float) -> dict[str, Any]:
    promos = moves.promo_page.size
    phase = np.maximum(np.searchsorted([t.start_ms for t in truths], moves.promo_time,
                                       side="right") - 1, 0)
    useful = 0
    for i, truth in enumerate(truths):
        page = moves.promo_page[phase == i]
        page = page[page < truth.hot.size]
        useful += int(np.count_nonzero(truth.hot[page] & (
            truth.rate_per_s[page] * window_ms / 1000.0 >= USEFUL_MIN_ACCESSES)))
    events: dict[int, list[tuple[int, str]]] = {}
    for kind, times, pages in (("p", moves.promo_time, moves.promo_page),
                               ("d", moves.demo_time, moves.demo_page)):
        for when, page in zip(times.tolist(), pages.tolist(), strict=True):
            events.setdefault(page, []).append((when, kind))
    ping_pong = 0
    for seq in events.values():
        seq.sort()
        for (t0, a), (_, b), (t2, c) in zip(seq, seq[1:], seq[2:], strict=False):
            if (a, b, c) == ("p", "d", "p") and t2 - t0 <= PING_PONG_WINDOWS * window_ms:
                ping_pong += 1
    seconds = duration_ms / 1000.0
    return {
        "promotions": promos, "useful": useful, "wasted": promos - useful,
        "demotions": int(moves.demo_page.size), "ping_pong": ping_pong,
        "promoted_mb_per_s": promos * PAGE_BYTES / (1 << 20) / seconds if seconds else 0.0,
        "promote_failed": sum(p.migrate_failed + p.prepare_failed
                              for t in engine.kmigrated.values() for p in t.passes),
    }


def _sampling(engine: Engine, cpus: int, duration_ms: float) -> dict[str, Any]:
    """Every tagged op and every sample accounted for, with the checks that prove it."""
    tags_kept = sum(p.kept for p in engine.profilers)
    discards: dict[str, int] = {}
    for prof in engine.profilers:
        for reason, count in prof.discards.items():
            discards[reason] = discards.get(reason, 0) + count
    lost_irq = sum(p.lost_interrupts for p in engine.profilers)
    stats = engine.vmstat
    total = stats.get("hwhint_total_events")
    driver = {name: engine.driver.outcomes[name] for name in DRIVER_OUTCOMES}
    in_rings = sum(engine.ring_lengths())
    records = {name: engine.pghot.outcomes[name] for name in RECORD_OUTCOMES}
    record_calls = sum(records.values())
    checks = {
        "kept tags = NMIs handled + interrupts lost": tags_kept == total + lost_irq,
        "NMIs = pushed + each driver filter": total == sum(driver.values()),
        "pushed = pghot calls + still in rings": driver["pushed"] == record_calls + in_rings,
        "pghot calls = recorded + each early return": record_calls == len(engine.records),
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise AssertionError(f"sample conservation violated: {', '.join(failed)}")
    seconds = duration_ms / 1000.0
    return {
        "tagged_ops": tags_kept + sum(discards.values()),
        "tags_discarded": discards,
        "tags_kept": tags_kept,
        "interrupts_lost": lost_irq,
        "total": total,
        "driver": driver,
        "in_rings_at_end": in_rings,
        "pghot": records,
        "recorded": records["recorded"],
        "nmi_per_cpu_per_s": total / cpus / seconds if seconds else 0.0,
        "yield": _ratio(driver["pushed"], total),
        "drop_rate": _ratio(driver["ring_full"], driver["pushed"] + driver["ring_full"]),
        "conservation": dict.fromkeys(checks, True),
    }


def _overhead(engine: Engine, costs: dict[str, float], cpus: int,
              duration_ms: float) -> dict[str, Any]:
    nmis = engine.vmstat.get("hwhint_total_events")
    records = len(engine.records)
    migrated = len(engine.pghot.promotions) + (len(engine.demoter.log) if engine.demoter else 0)
    busy_us = (nmis * costs["nmi_cost_us"] + records * costs["record_cost_us"] +
               migrated * costs["migrate_cost_us"])
    cpu_us = cpus * duration_ms * 1000.0
    return {**costs, "cpu_percent": 100.0 * busy_us / cpu_us if cpu_us else 0.0,
            "budget_note": "Memtis caps its sampler at 3% of one core"}


def verdict(result: dict[str, Any]) -> str:
    """One line a tiering engineer can act on: is the hot set (by access mass) on the fast
    tier by the end, how fast did it get there, and what did it cost in wasted promotions."""
    final = result["final"]
    phase = result["phases"][-1]
    migrations = result["migrations"]
    if final["hot_pages"] == 0:
        made = migrations["promotions"]
        return (f"NO HOT SET: no page is hotter than the threshold; {made} promotions were "
                "made on noise" + (" (an ideal detector makes ~none)" if made else " - correct"))
    coverage = phase["promoted"]["weighted_recall"] or 0.0
    if coverage >= 0.9:
        word = "EFFECTIVE"
    elif coverage >= 0.5:
        word = "PARTIAL"
    else:
        word = "INEFFECTIVE"
    ttp = phase["time_to_promote_ms"]
    speed = f" (p90 time to promote {ttp['p90'] / 1000:.2f} s)" if ttp["p90"] is not None else ""
    eff = final["placement_efficiency"]
    return (f"{word}: the fast tier holds {coverage:.0%} of the hot set's L3-miss traffic"
            f"{speed}; fast-tier hit ratio {final['fthr']:.2f} vs oracle "
            f"{final['fthr_oracle']:.2f} (efficiency {eff if eff is not None else 0:.0%}); "
            f"{migrations['wasted']} of {migrations['promotions']} promotions wasted")
