"""NUMA balancing as a pghot source: the task scanner, hint faults, mainline NUMAB2.

Modules, one job each: tunables.py (the sysctls), pte.py (the per-page PROT_NONE hint and
folio access time), pacing.py (when the scanner runs: task_tick_numa, task_numa_work's
bookkeeping, task_numa_fault / update_task_scan_period), scanner.py (one task_numa_work
pass), arrivals.py and trace_arrivals.py (when a marked page is next accessed: synthetic
workloads, lackey traces), events.py (the pending faults, in time order), policy.py (mainline
NUMAB2's should_numa_migrate_memory in tiering mode), fault.py (do_numa_page: mainline NUMAB2
and the pghot series' hint-fault recording, as loop rules both engines run), cost.py (the
modelled CPU cost), source.py (all of it as one object the engines drive). The kernel
behaviour is described with its sources in docs/kernel-model.md §f and docs/numab-model.md.
"""

from runtime.numab.arrivals import SyntheticArrivals
from runtime.numab.cost import NumabCosts, overhead
from runtime.numab.events import FaultQueue, Faults
from runtime.numab.fault import FAULT_OUTCOMES, NUMAB_EVENTS
from runtime.numab.source import SETUPS, HintFaultSource
from runtime.numab.trace_arrivals import TraceArrivals
from runtime.numab.tunables import NumabTunables

__all__ = [
    "FAULT_OUTCOMES", "NUMAB_EVENTS", "SETUPS", "FaultQueue", "Faults", "HintFaultSource",
    "NumabCosts", "NumabTunables", "SyntheticArrivals", "TraceArrivals", "overhead",
]
