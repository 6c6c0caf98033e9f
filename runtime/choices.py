"""Named choices the command line, the scenario schema and the models share.

One tuple per choice, in a module that imports nothing, so the CLI can build its parser
without loading numpy and every place that offers or checks a choice reads the same list.
"""

from __future__ import annotations

DRIVER_VARIANTS = ("v7", "fixed")
"""The driver model: the seed patch (v7, with its defects) or the repaired one."""
ENGINES = ("reference", "fast")
"""The event-by-event reference engine and the numpy fast engine held equal to it."""
INVARIANTS = ("conservation", "owner-pop", "stranded")
"""What `ibs-mprof explore` checks after every step."""
