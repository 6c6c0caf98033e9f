"""The hint-fault source as one object both engines drive: scan passes, phase redraws and
hint faults in a canonical order, with the fault rules interpreted or compiled.

    source = HintFaultSource(...)
    source.run_until(t_ms, compiled)   # everything of NUMA balancing strictly before t_ms
    ...the engine's own events at t_ms (IBS tags and works, kmigrated, kswapd, timeline)...
    source.pages_moved(pages, old_pfns)   # after anything else migrated pages

Inside run_until, at one instant: a phase redraw, then a scan tick (and its pass), then the
faults at that instant (a pass can make a fault due at once); faults in (time, page) order.
The reference engine runs the fault rules interpreted, one fault at a time; the fast engine
runs the same rules compiled over every fault up to the next tick, redraw or `t_ms`. A fault
that runs task_numa_placement ends a run in both (the pacing is recomputed), so both see the
same state at every step: the results are identical.

Setups: "numab2" (mainline NUMA balancing in tiering mode: the fault promotes) and "pghot"
(the fault records into pghot; kmigrated promotes). With tunables.mode 0 nothing happens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from runtime.columnlog import ColumnLog
from runtime.jiffies import INITIAL_JIFFIES
from runtime.memory import Memory
from runtime.nodemap import NodeMap
from runtime.numab import fault, pacing, pte
from runtime.numab.arrivals import PASS_DRAW, PHASE_DRAW
from runtime.numab.cost import NumabCosts
from runtime.numab.events import FaultQueue, Faults
from runtime.numab.policy import NBP_FIELDS, NODE_STATS, new_nbp
from runtime.numab.scanner import scan_pass
from runtime.numab.tunables import NumabTunables
from runtime.pghot.core import Pghot, Promotion, mb_to_pages, record_accesses
from runtime.pghot.tunables import PGHOT_HINTFAULTS
from runtime.pghot.watermarks import Watermarks
from runtime.topology import Topology

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
SETUPS = ("numab2", "pghot")
RUN_LIMIT = 1 << 16
"""Faults one compiled run takes at most (their arrays stay in cache)."""


class HintCalls(NamedTuple):
    """pghot_record_access calls hint faults made, in time order: the fault's time (ms of
    the run), its jiffies, the faulting CPU, the page's PFN, the target node, the page."""

    time_ms: F64
    jiffies: I64
    cpu: I64
    pfn: I64
    nid: I64
    page: I64

    @staticmethod
    def concat(parts: list[HintCalls]) -> HintCalls:
        return HintCalls(np.concatenate([p.time_ms for p in parts]),
                         np.concatenate([p.jiffies for p in parts]),
                         np.concatenate([p.cpu for p in parts]),
                         np.concatenate([p.pfn for p in parts]),
                         np.concatenate([p.nid for p in parts]),
                         np.concatenate([p.page for p in parts]))

    def take(self, index: I64) -> HintCalls:
        return HintCalls(self.time_ms[index], self.jiffies[index], self.cpu[index],
                         self.pfn[index], self.nid[index], self.page[index])


Deliver = Callable[[HintCalls], None]


class Arrivals(Protocol):
    """First accesses of marked pages (arrivals.SyntheticArrivals, trace_arrivals.
    TraceArrivals)."""

    def phase_starts(self) -> list[float]: ...

    def draw(self, pages: I64, t_ms: float, what: int,
             index: int) -> tuple[F64, I64]: ...


_compiled: dict[str, Callable[..., int]] = {}


def _rule(name: str, compiled: bool) -> Callable[..., int]:
    """A fault or record loop rule, as Python or compiled (compiled once per process)."""
    rules: dict[str, Callable[..., int]] = {"faults": fault.hint_faults,
                                            "record": record_accesses}
    if not compiled:
        return rules[name]
    if name not in _compiled:
        if name == "record":  # pghot's own compiled loop: one compilation for both sources
            from runtime.pghot.batch import record_calls

            _compiled[name] = record_calls
        else:
            from runtime.jit import compiled as jit

            _compiled[name] = jit(rules[name])
    return _compiled[name]


class HintFaultSource:
    """NUMA balancing's scanner and hint faults for one process (the workload)."""

    def __init__(self, tunables: NumabTunables, setup: str, topology: Topology, memory: Memory,
                 pages: int, arrivals: Arrivals, *, costs: NumabCosts | None = None,
                 watermarks: Watermarks | None = None, pghot: Pghot | None = None,
                 wakeup_kswapd: Callable[[int], None] | None = None,
                 deliver: Deliver | None = None) -> None:
        if setup not in SETUPS:
            raise ValueError(f"setup {setup!r} is not one of {SETUPS}")
        if setup == "pghot" and pghot is None:
            raise ValueError("the pghot setup needs the run's Pghot")
        self.tunables = tunables
        self.setup = setup
        self.topology = topology
        self.memory = memory
        self.pages = pages
        self.arrivals = arrivals
        self.costs = costs if costs is not None else NumabCosts()
        self.watermarks = watermarks if watermarks is not None else Watermarks()
        self.pghot = pghot
        self.wakeup_kswapd = wakeup_kswapd
        self.deliver = deliver
        """pghot setup: if given, gets each run's pghot_record_access calls (in time order)
        instead of the source applying them at once, so an engine can merge them by time
        with the IBS path's calls (nothing here reads pghot)."""
        self.nodemap = NodeMap(topology)
        nodes = self.nodemap.tables.node_kind.size
        shift = tunables.last_cpupid_shift
        self.words = pte.fresh_words(pages, shift)
        self.task, self.faults = pacing.new_task(tunables, nodes)
        self.nbp = new_nbp(nodes)
        self.queue = FaultQueue(pages)
        self.vm = np.zeros(len(fault.NUMAB_EVENTS), dtype=np.int64)
        self.outcomes = np.zeros(len(fault.FAULT_OUTCOMES), dtype=np.int64)
        self.kswapd = np.zeros(nodes, dtype=np.int64)
        self.scan_min = pacing.task_scan_min(tunables, pages)
        self.scan_max = pacing.task_scan_max(tunables, pages)
        self.passes = 0
        self.redraws = arrivals.phase_starts()
        self.next_redraw = 0
        self.last_ms = -1.0
        """Time of the last event handled (pacing ticks come after it)."""
        self.promotions: ColumnLog[Promotion] = ColumnLog(Promotion)
        """Mainline NUMAB2's in-fault promotions, in order."""
        self.cpu_node = np.array(topology.cpu_node, dtype=np.int64)
        self.present = np.zeros(nodes, dtype=np.int64)
        for node in topology.nodes:
            self.present[node.nid] = node.pfn_count
        self.high = np.array([self.watermarks.high_pages(p) for p in self.present.tolist()],
                             dtype=np.int64)
        self.promo = np.array([self.watermarks.promo_pages(p) for p in self.present.tolist()],
                              dtype=np.int64)

    # -- what the engines call --------------------------------------------------------------

    def next_event_ms(self) -> float:
        """The earliest instant at which something of NUMA balancing may happen."""
        return min(self._next_tick(), self._next_redraw(), self.queue.next_time())

    def run_until(self, until_ms: float, compiled: bool = False) -> None:
        """Handle every scan tick, phase redraw and hint fault before until_ms."""
        while True:
            tick_at = self._next_tick()
            redraw_at = self._next_redraw()
            stop = min(tick_at, redraw_at, until_ms)
            if self._faults_before(stop, compiled):
                continue  # a placement changed the pacing: the next tick may have moved
            if stop >= until_ms:
                return
            if stop == redraw_at:
                self._redraw(redraw_at)
            else:
                self._tick(int(tick_at))

    def pages_moved(self, pages: I64, old_pfns: I64) -> None:
        """Pages migrated by someone else (kmigrated, kswapd demotion): their PTEs lost the
        hint, pending faults are gone, and a tier change resets the folio's access time."""
        if not pages.size:
            return
        top = self.nodemap.toptier_of
        new_pfns = self.memory.pfns_of(pages)
        changed = top(self.nodemap.nodes_of(old_pfns)) != top(self.nodemap.nodes_of(new_pfns))
        pte.migrate_words(self.words, pages, changed, int(self.tunables.tiering),
                          self.tunables.last_cpupid_shift)
        self.queue.cancel(pages)

    def vmstat(self) -> dict[str, int]:
        """NUMA balancing's /proc/vmstat events and node stats (summed over nodes)."""
        out = {name: int(v) for name, v in zip(fault.NUMAB_EVENTS, self.vm.tolist(),
                                                 strict=True)}
        for name in NODE_STATS:
            out[name] = int(self.nbp[:, NBP_FIELDS.index(name)].sum())
        return out

    def node_stat(self, nid: int, name: str) -> int:
        return int(self.nbp[nid, NBP_FIELDS.index(name)])

    def fault_outcomes(self) -> dict[str, int]:
        return {name: int(v) for name, v in zip(fault.FAULT_OUTCOMES, self.outcomes.tolist(),
                                                 strict=True)}

    def scan_period_ms(self) -> int:
        return int(self.task[pacing.PERIOD])

    # -- steps ------------------------------------------------------------------------------

    def _next_tick(self) -> float:
        if not self.tunables.mode:
            return float("inf")
        return float(pacing.next_tick_ms(self.task, self.last_ms))

    def _next_redraw(self) -> float:
        return self.redraws[self.next_redraw] if self.next_redraw < len(self.redraws) \
            else float("inf")

    def _tick(self, run_ms: int) -> None:
        """task_tick_numa at run_ms, and the pass if it is due."""
        self.last_ms = max(self.last_ms, float(run_ms))
        if not pacing.tick(self.task, run_ms, self.scan_min):
            return
        pacing.start_pass(self.task, run_ms)
        page_pfn = self.memory.page_frames()[:self.pages]
        result = scan_pass(self.task, self.words, page_pfn, self.nodemap, self.tunables, run_ms)
        marked = result.marked
        self.vm[fault.PTE_UPDATES] += marked.size
        if marked.size:
            times, cpus = self.arrivals.draw(marked, float(run_ms), PASS_DRAW, self.passes)
            self.queue.add(times, marked, cpus)
        self.passes += 1
        pacing.end_pass(self.task, marked.size * self.costs.pte_update_ns)

    def _redraw(self, t_ms: float) -> None:
        """A new phase: every pending fault is drawn again from t_ms with the new rates."""
        pages = self.queue.pending_pages()
        if pages.size:
            times, cpus = self.arrivals.draw(pages, t_ms, PHASE_DRAW, self.next_redraw)
            self.queue.add(times, pages, cpus)
        self.next_redraw += 1
        self.last_ms = max(self.last_ms, t_ms)

    def _faults_before(self, stop: float, compiled: bool) -> bool:
        """Handle the faults before stop; True if one ran task_numa_placement (the rest wait)."""
        placements = int(self.task[pacing.PLACEMENTS])
        while True:
            faults = self.queue.take(stop, RUN_LIMIT if compiled else 1)
            if not len(faults):
                return False
            handled = self._handle(faults, compiled)
            self.last_ms = max(self.last_ms, float(faults.time_ms[handled - 1]))
            if handled < len(faults):
                self.queue.untake(faults.tail(handled))
            if int(self.task[pacing.PLACEMENTS]) != placements:
                return True

    def _arrays(self) -> fault.FaultArrays:
        t = self.tunables
        free = np.zeros(self.present.size, dtype=np.int64)
        for node in self.topology.nodes:
            free[node.nid] = self.memory.free_pages(node.nid)
        return fault.FaultArrays(
            tiering=int(t.tiering), shift=t.last_cpupid_shift,
            rate_limit=mb_to_pages(t.promote_rate_limit_MBps), hot_threshold=t.hot_threshold_ms,
            th_period=t.scan_period_max_ms, scan_min=self.scan_min, scan_max=self.scan_max,
            words=self.words, page_pfn=self.memory.page_frames(), nodes=self.nodemap.tables,
            cpu_node=self.cpu_node, task=self.task, faults=self.faults, nbp=self.nbp,
            free=free, present=self.present, high=self.high, promo=self.promo,
            kswapd=self.kswapd, vm=self.vm, outcomes=self.outcomes)

    def _handle(self, faults: Faults, compiled: bool) -> int:
        """Run the setup's fault rule over the faults; apply what it decided; how many it
        handled."""
        jiffies = INITIAL_JIFFIES + np.floor(faults.time_ms).astype(np.int64)
        out = np.empty(len(faults), dtype=np.int64)
        handled: int = _rule("faults", compiled)(self._arrays(), int(self.setup == "pghot"),
                                                 faults.page, faults.cpu, jiffies, out)
        done = faults.head(handled)
        out, jiffies = out[:handled], jiffies[:handled]
        if self.setup == "numab2":
            self._migrate(done, out)
        else:
            self._record(done, out, jiffies, compiled)
        for nid in np.flatnonzero(self.kswapd).tolist():
            if self.wakeup_kswapd is not None:
                self.wakeup_kswapd(nid)
        self.kswapd[:] = 0
        return handled

    def _migrate(self, faults: Faults, targets: I64) -> None:
        """Move the pages NUMAB2 promoted, in fault order (runs of one target at a time,
        so every allocation and free happens in the order one-by-one moves make them)."""
        moved = np.flatnonzero(targets >= 0)
        if not moved.size:
            return
        pages, to, when = faults.page[moved], targets[moved], faults.time_ms[moved]
        cuts = np.flatnonzero(np.diff(to)) + 1
        for run in np.split(np.arange(moved.size), cuts):
            target = int(to[run[0]])
            olds = self.memory.pfns_of(pages[run])
            news, _ = self.memory.migrate_many(olds, target)
            for k, old, new in zip(run.tolist(), olds.tolist(), news.tolist(), strict=True):
                self.promotions.append(Promotion(int(when[k]), old, new, target,
                                                 int(pages[k])))

    def _record(self, faults: Faults, nids: I64, jiffies: I64, compiled: bool) -> None:
        """pghot_record_access(pfn, target, PGHOT_HINTFAULTS, jiffies) for each fault that
        has a target, in order."""
        assert self.pghot is not None
        calls = np.flatnonzero(nids >= 0)
        if not calls.size:
            return
        pfns = self.memory.pfns_of(faults.page[calls])
        if self.deliver is not None:
            self.deliver(HintCalls(faults.time_ms[calls], jiffies[calls], faults.cpu[calls],
                                   pfns, nids[calls], faults.page[calls]))
            return
        ready = np.zeros(calls.size, dtype=np.uint8)
        _rule("record", compiled)(self.pghot.arrays(), pfns, nids[calls], PGHOT_HINTFAULTS,
                                  jiffies[calls], ready)
