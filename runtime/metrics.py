"""Metrics of a run against ground truth, as defined in the field's evaluation method, kept as
streaming summaries so that a run's memory does not grow with simulated time.

`Collector` watches an engine: at every timeline tick it reads the pghot calls and the
promotions and demotions logged since the last tick (and lets the engine forget them), and at
every phase end it closes that phase's numbers. It keeps only fixed-width per-page arrays
(whether a page is on the fast tier, when it was last made READY and whether that was within
the window, when it was last promoted), summaries (a lag histogram, counters of the ready set
D(t) and of the fast tier's share of the traffic, updated for what changed) and, per phase,
the hot pages' first READY and first promotion. `summarise` turns that into the report's
numbers:
- ready set D(t) and promoted set P vs the hot set H*: precision, recall, F1, access-weighted
  recall;
- fast-tier hit ratio (FTHR, share of L3-miss accesses served by the top tier) vs an oracle
  holding the top-K pages (placement efficiency = FTHR / FTHR*);
- time to detect / promote each hot page (median, p90), recovery after a hot-set shift;
- promotions useful / wasted / ping-pong; every sample accounted for; sample-to-record lag;
  modelled CPU overhead from stated per-NMI, per-record and per-migration costs.
A full per-call log is written only when asked for (`sample_log`), streamed as CSV.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from runtime import callfold, sums
from runtime.draws import phase_at
from runtime.driver import DRIVER_OUTCOMES
from runtime.groundtruth import PhaseTruth
from runtime.kernel_state import Engine
from runtime.nodemap import NodeMap
from runtime.pagestate import IN_D, ON_TOP, PageState
from runtime.pghot.core import RECORD_OUTCOMES
from runtime.pghot.tunables import PGHOT_HWHINTS
from runtime.workloads import PAGE_BYTES

__all__ = ["Collector", "Engine", "HEATMAP_BUCKETS", "LagHistogram", "summarise", "verdict"]

HEATMAP_BUCKETS = 64
USEFUL_MIN_ACCESSES = 2  # a promotion is useful if the page is hot and gets >= 2 accesses ...
PING_PONG_WINDOWS = 10  # ... ping-pong: promoted, demoted, promoted again within 10 windows
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _quantiles(values: F64) -> dict[str, float | None]:
    if not values.size:
        return {"median": None, "p90": None, "max": None, "count": 0}
    return {"median": float(np.median(values)), "p90": float(np.quantile(values, 0.9)),
            "max": float(values.max()), "count": int(values.size)}


class LagHistogram:
    """Sample-to-record lags (ms) in a fixed set of bins (callfold.lag_bin: 1 us wide up to
    FINE_MS, then 64 a doubling above), which the collector's fold (callfold.fold_calls)
    counts in. Quantiles come out to within half a bin; count, sum and max are exact."""

    def __init__(self) -> None:
        self.counts = np.zeros(callfold.LAG_BINS, dtype=np.int64)
        self.count = 0
        self.total = 0.0
        self.max = -math.inf

    def counted(self, count: int, total: float, most: float) -> None:
        """count more lags, the largest `most`, were put in self.counts; total is the running
        sum of every lag so far (one sum in call order, however the calls were read)."""
        self.count += count
        self.total = total
        self.max = max(self.max, most)

    def _value(self, index: int) -> float:
        """The middle of a bin."""
        if index < callfold.FINE:
            return (index + 0.5) / 1000.0
        step = (index - callfold.FINE + 0.5) / callfold.PER_DOUBLING
        return float(callfold.FINE_MS * 2.0 ** step)

    def quantile(self, q: float) -> float:
        rank = q * (self.count - 1)
        cumulative = np.cumsum(self.counts)
        found = int(np.searchsorted(cumulative, rank, side="right"))
        value: float = min(self._value(found), self.max)
        return value

    def summary(self) -> dict[str, float | None]:
        if not self.count:
            return {"median": None, "p90": None, "max": None, "count": 0}
        return {"median": self.quantile(0.5), "p90": self.quantile(0.9), "max": self.max,
                "count": self.count, "mean": self.total / self.count}


def distinct(values: I64) -> I64:
    """np.unique by sorting (numpy's hash-based unique is several times slower on ids)."""
    ordered = np.sort(values)
    out: I64 = ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered
    return out


def first_of_each(values: I64) -> tuple[I64, I64]:
    """Each distinct value (ascending) and the index of its first occurrence."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]] if ordered.size else \
        np.zeros(0, dtype=bool)
    return ordered[first], order[first]


@dataclass
class _PhaseRun:
    """What the collector gathers about the running phase: its hot pages that were newly
    hot and off the fast tier at its start (the ones time to detect / promote is about), when
    each was first made READY and first promoted, and the pages promoted in it."""

    index: int
    truth: PhaseTruth
    candidates: I64  # ascending
    first_ready: F64  # per candidate, NaN until it happens
    first_promo: F64
    promoted: list[I64] = field(default_factory=list)

    def note(self, column: F64, pages: I64, times: F64) -> None:
        """First time of each candidate among pages (in time order)."""
        if not self.candidates.size or not pages.size:
            return
        at = np.searchsorted(self.candidates, pages)
        hit = at < self.candidates.size
        hit[hit] = self.candidates[at[hit]] == pages[hit]
        at, when = at[hit], times[hit]
        first = np.isnan(column[at])
        # the earliest of a page's times: take the first occurrence (times ascend)
        slot, keep = first_of_each(at[first])
        column[slot] = when[first][keep]


class Collector:
    """Engine observer (tick at each timeline tick, phase_end at each phase end)."""

    def __init__(self, truths: list[PhaseTruth], pages: int,
                 lower_ranges: list[tuple[int, int]], window_ms: int, *,
                 keep_logs: bool = False, sample_log: TextIO | None = None,
                 detect_on_promote: bool = False) -> None:
        self.truths = truths
        self.pages = pages
        self.lower_ranges = lower_ranges  # PFN ranges of the lower tier, ascending
        self._lower = callfold.lower_tier(lower_ranges, HEATMAP_BUCKETS)
        self.window_ms = window_ms  # pghot's frequency window: the span of D(t)
        self.keep_logs = keep_logs
        """Leave the engine's logs whole (tests compare them); else forget what was read."""
        self.sample_log = sample_log
        self.detect_on_promote = detect_on_promote
        """Mainline NUMAB2 decides and promotes in one hint fault, with no READY state: its
        promotion is its detection (time to detect = time to promote)."""
        self.timeline: list[dict[str, Any]] = []
        self.heatmap: list[list[int]] = []
        self.phases: list[dict[str, Any]] = []
        self.lag = LagHistogram()
        self.calls = 0
        self.ibs_calls = 0
        """pghot calls from drained IBS samples (the rest came from hint faults)."""
        self.first_ready_pages = 0
        self.promotions = self.demotions = self.useful = self.ping_pong = 0
        self._started = False
        self._calls_seen = self._promos_seen = self._demos_seen = 0
        self._heat_row = np.zeros(self._lower.buckets, dtype=np.int64)

    # --- per-page state, set up at the first look ---------------------------------------------
    def _start(self, engine: Engine) -> None:
        self._started = True
        self._nodemap = NodeMap(engine.topology)
        pages = np.arange(self.pages, dtype=np.int64)
        self.state = PageState(self.pages, self.truths[-1].end_ms, self._top(engine, pages))
        """On top, in D(t), latest READY and promotion per page (runtime/pagestate.py)."""
        self._fifo: list[tuple[F64, I64]] = []
        self._open_phase(0, engine, None)

    def _top(self, engine: Engine, pages: I64) -> B:
        """Whether each page sits on a top-tier node now."""
        nids = self._nodemap.nodes_of(engine.memory.pfns_of(pages))
        return self._nodemap.toptier_of(nids)

    def _open_phase(self, index: int, engine: Engine, before: PhaseTruth | None) -> None:
        """Counters of the new phase's truth over the current placement and ready set, and
        its candidates: hot pages newly hot (not hot in the phase before) and off top."""
        truth = self.truths[index]
        self.truth = truth
        on_top = self.state.flag(ON_TOP)
        self.top_mass = truth.rate.sum_over(on_top)
        self.top_count = int(np.count_nonzero(on_top))
        hot = truth.hot_pages
        top_hot = on_top[hot]
        rate_hot = truth.rate_of(hot)
        in_d = self.state.flag(IN_D, hot)
        self.hot_top = int(np.count_nonzero(top_hot))
        self.hot_top_mass = float(rate_hot[top_hot].sum())
        self.d_count = int(np.count_nonzero(self.state.flag(IN_D)))
        self.d_hot = int(np.count_nonzero(in_d))
        self.d_hot_mass = float(rate_hot[in_d].sum())
        self.d_hot_top = int(np.count_nonzero(in_d & top_hot))
        self.d_hot_top_mass = float(rate_hot[in_d & top_hot].sum())
        newly = hot if before is None else hot[~before.is_hot(hot)]
        candidates = newly[~on_top[newly]]
        self.phase = _PhaseRun(index, truth, candidates,
                               np.full(candidates.size, np.nan), np.full(candidates.size, np.nan))

    # --- the observer -----------------------------------------------------------------------
    def tick(self, engine: Engine) -> None:
        """A timeline row and a heatmap row for the run up to now."""
        self._catch_up(engine)
        now = engine.now_ms
        truth = self.truth
        if self.top_count > truth.k:  # then FTHR could beat the oracle: K is not what it holds
            raise AssertionError(f"{self.top_count} workload pages on the top tier at {now:g} "
                                 f"ms, more than the oracle's K = {truth.k}")
        self.heatmap.append([int(v) for v in self._heat_row])
        self._heat_row[:] = 0
        considered = truth.hot_count - self.hot_top + self.d_hot_top
        considered_mass = truth.hot_rate_total - self.hot_top_mass + self.d_hot_top_mass
        stats = engine.vmstat
        self.timeline.append({
            "t_ms": round(now, 3),
            "phase": self.phase.index,
            "fthr": truth.fthr_of_mass(self.top_mass),
            "fthr_oracle": truth.oracle_fthr,
            "hot_pages_lower": truth.hot_count - self.hot_top,
            "ready_pages": self.d_count,
            "ready_precision": _ratio(self.d_hot, self.d_count),
            "ready_recall": _ratio(self.d_hot, considered),
            "ready_weighted_recall": _ratio(self.d_hot_mass, considered_mass),
            "promotions": self.promotions,
            "demotions": self.demotions,
            "hwhint_total_events": stats.get("hwhint_total_events"),
            "hwhint_useful_events": stats.get("hwhint_useful_events"),
            "pghot_recorded_accesses": stats.get("pghot_recorded_accesses"),
            "ring_full_drops": engine.driver.outcomes["ring_full"],
        })

    def phase_end(self, engine: Engine) -> None:
        """Close the running phase at its end and open the next."""
        self._catch_up(engine)
        index = self.phase.index
        self.phases.append(self._phase_metrics(engine.now_ms))
        if index + 1 < len(self.truths):
            self._open_phase(index + 1, engine, self.truths[index])

    def finish(self, engine: Engine) -> None:
        """The end of the run: the last (partial) tick, and the last phase closed."""
        if not self.timeline or self.timeline[-1]["t_ms"] < engine.now_ms:
            self.tick(engine)
        if not self._started:
            self._start(engine)
        if len(self.phases) < len(self.truths):
            self.phases.append(self._phase_metrics(engine.now_ms))

    def _catch_up(self, engine: Engine) -> None:
        """Fold in what happened since the last look: moves first (they change which pages
        are on top), then the pghot calls (they change D(t))."""
        if not self._started:
            self._start(engine)
        self._moves(engine)
        self._calls(engine)
        self._expire(engine.now_ms)

    # --- moves ------------------------------------------------------------------------------
    def _moves(self, engine: Engine) -> None:
        promos = engine.pghot.promotions
        page, when = promos.column("page", self._promos_seen), promos.column(
            "time_ms", self._promos_seen)
        self._promos_seen = len(promos)
        moved = [page]
        if page.size:
            self._promoted(page[page < self.pages], when[page < self.pages])
        if engine.demoter is not None:
            demos = engine.demoter.log
            down = demos.column("page", self._demos_seen)
            self._demos_seen = len(demos)
            self.demotions += int(down.size)
            down = down[down < self.pages]
            self.state.demoted(down)
            moved.append(down)
            if not self.keep_logs:
                demos.drop(self._demos_seen)
        if not self.keep_logs:
            promos.drop(self._promos_seen)
        pages = distinct(np.concatenate(moved))
        pages = pages[pages < self.pages]
        if pages.size:
            self._relocate(pages, self._top(engine, pages))

    def _promoted(self, pages: I64, times: I64) -> None:
        truth = self.truth
        self.promotions += int(pages.size)
        rate = truth.rate_of(pages)
        self.useful += int(np.count_nonzero(truth.is_hot(pages) & (
            rate * self.window_ms / 1000.0 >= USEFUL_MIN_ACCESSES)))
        self.phase.note(self.phase.first_promo, pages, times.astype(np.float64))
        if self.detect_on_promote:
            self.phase.note(self.phase.first_ready, pages, times.astype(np.float64))
        self.phase.promoted.append(pages)
        # promoted, demoted, promoted again within the windows (a page moved both ways
        # within one tick is seen at its next promotion)
        again = self.state.promoted(pages, times, PING_PONG_WINDOWS * self.window_ms)
        self.ping_pong += int(np.count_nonzero(again))

    def _relocate(self, pages: I64, top: B) -> None:
        """Pages whose fast-tier membership may have changed: update every counter."""
        was = self.state.flag(ON_TOP, pages)
        changed = was != top
        if not changed.any():
            return
        pages, top = pages[changed], top[changed]
        sign = np.where(top, 1, -1)
        truth = self.truth
        rate = truth.rate_of(pages)
        hot = truth.is_hot(pages)
        in_d = self.state.flag(IN_D, pages)
        self.top_count += int(sign.sum())
        self.top_mass += sums.dot(sign, rate)
        self.hot_top += int(sign[hot].sum())
        self.hot_top_mass += sums.dot(sign[hot], rate[hot])
        both = hot & in_d
        self.d_hot_top += int(sign[both].sum())
        self.d_hot_top_mass += sums.dot(sign[both], rate[both])
        self.state.set_flag(ON_TOP, pages, top)

    # --- pghot calls ------------------------------------------------------------------------
    def _calls(self, engine: Engine) -> None:
        log = engine.calls
        start = self._calls_seen
        self._calls_seen = len(log)
        names = ("pfn", "drain_ms", "sample_ms", "page", "ready", "src", "cpu")
        blocks = list(log.blocks(names if self.sample_log is not None else names[:-1], start))
        if not self.keep_logs:
            log.drop(self._calls_seen)
        tier = self._lower
        ready_pages: list[I64] = []
        ready_when: list[F64] = []
        for pfn, drain, sample, page, ready, src, *cpu in blocks:  # (as logged: no joining)
            if self.sample_log is not None:
                self.sample_log.writelines(
                    f"{s},{d!r},{c},{p},{g},{int(r)},{x}\n" for s, d, c, p, g, r, x in zip(
                        sample.tolist(), drain.tolist(), cpu[0].tolist(), pfn.tolist(),
                        page.tolist(), ready.astype(bool).tolist(), src.tolist(), strict=True))
            self.calls += int(pfn.size)
            pages, when = np.empty(pfn.size, dtype=np.int64), np.empty(pfn.size)
            ibs_calls, total, most, kept = callfold.fold_calls(
                pfn, drain, sample, src, page, ready, PGHOT_HWHINTS, self.pages,
                self.lag.counts, self.lag.total, self._heat_row, tier.starts, tier.ends,
                tier.total, tier.buckets, pages, when)
            self.ibs_calls += ibs_calls
            self.lag.counted(ibs_calls, total, most)
            ready_pages.append(pages[:kept])
            ready_when.append(when[:kept])
        if not blocks:
            return
        pages, when = np.concatenate(ready_pages), np.concatenate(ready_when)
        if not pages.size:
            return
        self.phase.note(self.phase.first_ready, pages, when)
        # each page's latest READY time (calls are in time order: its last call)
        first, last = self.state.mark_ready(pages, when)
        self.first_ready_pages += first
        self._fifo.append((when[last].astype(np.float64), pages[last]))

    def _expire(self, now: float) -> None:
        """D(t) = pages made READY within (now - window, now]: the pages READY since the last
        look, and those whose entry in the FIFO of READY times left the window, are set in or
        out of it (a page refreshed since its entry stays in: its newer entry is queued)."""
        cut = now - self.window_ms
        leaving: list[I64] = []
        while self._fifo:
            times, pages = self._fifo[0]
            old = times <= cut
            if not old.any():
                break
            leaving.append(pages[old])
            if old.all():
                self._fifo.pop(0)
            else:
                self._fifo[0] = (times[~old], pages[~old])
        fresh = [pages for _, pages in self._fifo[-1:]]
        candidates = distinct(np.concatenate(leaving + fresh)) if leaving or fresh else \
            np.zeros(0, dtype=np.int64)
        if not candidates.size:
            return
        inside = self.state.ready_after(candidates, cut)
        was = self.state.flag(IN_D, candidates)
        changed = inside != was
        pages, inside = candidates[changed], inside[changed]
        if not pages.size:
            return
        sign = np.where(inside, 1, -1)
        truth = self.truth
        hot = truth.is_hot(pages)
        rate = truth.rate_of(pages)
        top = self.state.flag(ON_TOP, pages)
        self.d_count += int(sign.sum())
        self.d_hot += int(sign[hot].sum())
        self.d_hot_mass += sums.dot(sign[hot], rate[hot])
        self.d_hot_top += int(sign[hot & top].sum())
        self.d_hot_top_mass += sums.dot(sign[hot & top], rate[hot & top])
        self.state.set_flag(IN_D, pages, inside)

    # --- a phase's numbers ------------------------------------------------------------------
    def _phase_metrics(self, end: float) -> dict[str, Any]:
        run = self.phase
        truth = run.truth
        start = truth.start_ms
        promoted = distinct(np.concatenate(run.promoted)) if run.promoted else \
            np.zeros(0, dtype=np.int64)
        p_set = promoted[self.state.flag(ON_TOP, promoted)]
        tp = int(np.count_nonzero(truth.is_hot(p_set))) if p_set.size else 0
        precision = _ratio(tp, p_set.size)
        recall = _ratio(self.hot_top, truth.hot_count)
        weighted = _ratio(self.hot_top_mass, truth.hot_rate_total)
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall is not None and precision + recall > 0
              else None)
        rows = [r for r in self.timeline if start <= r["t_ms"] < end]
        n = int(run.candidates.size)
        return {
            "label": truth.label, "start_ms": start, "end_ms": truth.end_ms,
            "hot_pages": truth.hot_count, "theta_accesses_per_s": truth.theta_per_s,
            "oracle_fthr": truth.oracle_fthr,
            "fthr_end": truth.fthr_of_mass(self.top_mass),
            "promoted": {"pages": int(p_set.size), "precision": precision, "recall": recall,
                         "f1": f1, "weighted_recall": weighted},
            "ready": {key: _mean([r[name] for r in rows if r[name] is not None])
                      for key, name in (("precision_mean", "ready_precision"),
                                        ("recall_mean", "ready_recall"),
                                        ("weighted_recall_mean", "ready_weighted_recall"))},
            "time_to_detect_ms": _times(run.first_ready - start, n),
            "time_to_promote_ms": _times(run.first_promo - start, n),
            "recovery_ms": None,
        }

    def phase_at(self, t_ms: float) -> int:
        return phase_at(t_ms, [t.start_ms for t in self.truths])


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _times(values: F64, of_pages: int) -> dict[str, Any]:
    got = values[~np.isnan(values)]
    return {**_quantiles(got), "fraction": _ratio(got.size, of_pages), "of_pages": of_pages,
            "values": sorted(round(v, 1) for v in got.tolist())}


def _recovery(timeline: list[dict[str, Any]], shift_ms: float) -> float | None:
    """Time after shift_ms until FTHR is back to 90% of its last value before it."""
    before = [r["fthr"] for r in timeline if r["t_ms"] < shift_ms]
    if not before:
        return None
    steady = before[-1]
    for row in timeline:
        if row["t_ms"] > shift_ms and row["fthr"] >= 0.9 * steady:
            return float(row["t_ms"] - shift_ms)
    return None


def summarise(engine: Engine, collector: Collector, costs: dict[str, float],
              duration_ms: float,
              progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Every number the report shows, JSON-ready (call collector.finish first)."""
    phases = collector.phases
    for i, phase in enumerate(phases):
        if i > 0:
            phase["recovery_ms"] = _recovery(collector.timeline, phase["start_ms"])
        if progress is not None:
            progress((i + 1) / len(phases))
    cpus = len(engine.cpus)
    final = collector.truth
    fthr = final.fthr_of_mass(collector.top_mass)
    result = {
        "final": {
            "fthr": fthr, "fthr_oracle": final.oracle_fthr,
            "placement_efficiency": _ratio(fthr, final.oracle_fthr),
            "hot_pages": final.hot_count,
            "hot_pages_on_top": collector.hot_top,
        },
        "phases": phases,
        "migrations": _migrations(engine, collector, duration_ms),
        "sampling": _sampling(engine, collector, cpus, duration_ms),
        "lag_ms": collector.lag.summary(),
        "overhead": _overhead(engine, collector, costs, cpus, duration_ms),
        "vmstat": engine.vmstat.as_dict(),
        "first_ready_pages": collector.first_ready_pages,
        "pitfalls": engine.pghot.pitfall_texts(),
    }
    result["verdict"] = verdict(result)
    return result


def _migrations(engine: Engine, collector: Collector, duration_ms: float) -> dict[str, Any]:
    promos = collector.promotions
    seconds = duration_ms / 1000.0
    return {
        "promotions": promos, "useful": collector.useful, "wasted": promos - collector.useful,
        "demotions": collector.demotions, "ping_pong": collector.ping_pong,
        "promoted_mb_per_s": promos * PAGE_BYTES / (1 << 20) / seconds if seconds else 0.0,
        "promote_failed": sum(t.totals.migrate_failed + t.totals.prepare_failed
                              for t in engine.kmigrated.values()),
    }


def _sampling(engine: Engine, collector: Collector, cpus: int,
              duration_ms: float) -> dict[str, Any]:
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
        "pushed = IBS pghot calls + still in rings":
            driver["pushed"] == collector.ibs_calls + in_rings,
        "pghot calls = recorded + each early return": record_calls == collector.calls,
    }
    hints = engine.hints
    if hints is not None:
        outcomes = hints.fault_outcomes()
        checks["hint faults = each fault outcome"] = \
            stats.get("numa_hint_faults") == sum(outcomes.values()) - outcomes["no_folio"]
        checks["hint faults to pghot = hint-fault pghot calls"] = \
            outcomes["to_pghot"] == collector.calls - collector.ibs_calls
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
        "pghot_calls_ibs": collector.ibs_calls,
        "pghot_calls_hint_faults": collector.calls - collector.ibs_calls,
        "hint_faults": None if hints is None else {
            "pte_updates": stats.get("numa_pte_updates"),
            "faults": stats.get("numa_hint_faults"),
            "local": stats.get("numa_hint_faults_local"),
            "outcomes": hints.fault_outcomes(),
            "faults_per_s": stats.get("numa_hint_faults") / seconds if seconds else 0.0,
            "scan_passes": hints.passes,
            "scan_period_ms_at_end": hints.scan_period_ms(),
        },
        "conservation": dict.fromkeys(checks, True),
    }


SAMPLE_LOG_HEADER = "sample_ms,drain_ms,cpu,pfn,page,ready,src\n"
"""samples.csv's columns (Collector.sample_log rows): src 0 hint fault, 1 IBS."""
COST_KEYS = ("nmi_cost_us", "record_cost_us", "migrate_cost_us", "pte_update_cost_us",
             "hint_fault_cost_us")
"""The scenario's metrics.*_cost_us keys summarise needs, one per modelled cause."""


def _overhead(engine: Engine, collector: Collector, costs: dict[str, float], cpus: int,
              duration_ms: float) -> dict[str, Any]:
    """Modelled CPU time by cause (each count times its stated cost), as a share of every
    CPU's time: the IBS path (NMIs, pghot records), NUMA balancing (PTE updates in scan
    passes, hint faults) and the migrations either makes (promotions and demotions)."""
    stats = engine.vmstat
    amounts = {"nmis": (stats.get("hwhint_total_events"), "nmi_cost_us"),
               "pghot_records": (collector.calls, "record_cost_us"),
               "pte_updates": (stats.get("numa_pte_updates"), "pte_update_cost_us"),
               "hint_faults": (stats.get("numa_hint_faults"), "hint_fault_cost_us"),
               "migrations": (collector.promotions + collector.demotions, "migrate_cost_us")}
    cpu_us = cpus * duration_ms * 1000.0
    by_cause = {cause: 100.0 * count * costs[key] / cpu_us if cpu_us else 0.0
                for cause, (count, key) in amounts.items()}
    return {**costs, "cpu_percent": sum(by_cause.values()), "by_cause_percent": by_cause,
            "counts": {cause: count for cause, (count, _) in amounts.items()},
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
