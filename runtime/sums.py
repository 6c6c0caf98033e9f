"""Dot products that come out the same on every machine, without BLAS.

np.dot of two float vectors is BLAS's ddot: OpenBLAS splits a long one over its threads,
so its rounding depends on how many threads the machine gives it (measured with numpy
2.4: 2 M normal products summed to 2003.795677143764 with OPENBLAS_NUM_THREADS=1 and
2003.7956771437675 with 2), and a seed's report could differ between machines; its
threads then spin-wait on other cores (the 64-CPU microbench used 1.7 cores' CPU time for
1 core's work). numpy's own sum of the products does not depend on threads and stays on
one core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def dot(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    """sum(a * b) in float64, by numpy's pairwise summation."""
    return float(np.multiply(a, b, dtype=np.float64).sum())
