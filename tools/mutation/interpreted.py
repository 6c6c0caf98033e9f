"""pytest plugin for the mutation run: the fast engine interpreted (NUMBA_DISABLE_JIT=1).

A mutant changes the source fingerprint that names the numba cache folder (runtime/jit.py),
so a compiled run would recompile every loop for every mutant. Interpreted, the compiled
loops run as the Python they are written in. The one difference that matters here: the
page -> PFN array is int32 where every PFN fits (runtime/memory.py), and numba widens an
int32 element to int64 before arithmetic while numpy keeps it int32 (PFN << PAGE_SHIFT
would wrap). So this plugin hands the per-sample path an int64 copy, which is what the
compiled loop computes with. Loaded with `-p tools.mutation.interpreted`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

if os.environ.get("NUMBA_DISABLE_JIT") == "1":
    import runtime.fast_engine
    import runtime.sample_path

    _machine = runtime.sample_path.Machine

    def _widened(page_pfn: Any, *rest: Any) -> Any:
        return _machine(np.asarray(page_pfn, dtype=np.int64), *rest)

    setattr(runtime.fast_engine, "Machine", _widened)  # noqa: B010
