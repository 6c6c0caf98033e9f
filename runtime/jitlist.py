"""numba typed lists of numpy generators, for compiled loops that draw for many CPUs.

numba.typed.List compiles its methods for each new item type when a process first fills one
(0.35 s for generators, every run); built inside compiled helpers instead, those methods come
from the on-disk cache with the helpers. Imported only by code that runs compiled loops.
"""

from __future__ import annotations

from typing import Any

from numba.typed import List

from runtime.jit import compiled


def _new_list(first: Any) -> Any:
    items = List()
    items.append(first)
    return items


def _append(items: Any, item: Any) -> None:
    items.append(item)


new_list = compiled(_new_list)
append = compiled(_append)


def generator_list(generators: list[Any]) -> Any:
    """A typed list of the generators (at least one), sharing their states."""
    items = new_list(generators[0])
    for generator in generators[1:]:
        append(items, generator)
    return items
