"""Dot products that come out the same on every machine, without BLAS.

np.dot of two float vectors is BLAS's ddot: OpenBLAS splits a long one over its threads
(so its rounding depends on how many cores the machine has, and a seed's report would
differ between machines), and its threads then spin-wait on other cores (measured: the
64-CPU microbench used 1.7 cores' CPU time for 1 core's work). numpy's own sum of the
products is the same everywhere and stays on one core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def dot(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    """sum(a * b) in float64, by numpy's pairwise summation."""
    return float(np.multiply(a, b, dtype=np.float64).sum())
