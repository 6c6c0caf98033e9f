"""Tests written for mutants of the kernel-rule modules that the rest of the suite let live
(tools/mutation/README.md lists each and why).

Each asserts behaviour the model relies on; what it would catch is named in its docstring.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import Any

from generated._base import JITABLE
from runtime import callfold, draws, sample_path
from runtime.jit import NATIVE_FORMS
from runtime.pghot import core


def _called(func: Callable[..., Any]) -> Iterator[types.FunctionType]:
    """The plain Python functions func's code names as globals or as attributes of a module it
    names (`precise_mode.update_record`), in its body and nested code."""
    codes = [func.__code__]
    while codes:
        code = codes.pop()
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        named = [func.__globals__.get(name) for name in code.co_names]
        modules = [m for m in named if isinstance(m, types.ModuleType)]
        named += [getattr(m, name, None) for m in modules for name in code.co_names]
        yield from (f for f in named if isinstance(f, types.FunctionType))


def _python(func: Any) -> Callable[..., Any]:
    """A compiled loop's Python function (numba's py_func; itself when numba is off)."""
    return getattr(func, "py_func", func)


COMPILED_LOOPS = (sample_path.profile_group, sample_path.stamp_lru, sample_path.nmi_and_rings,
                  sample_path.drained_calls_into, core.record_accesses, draws._draw_group,
                  callfold._fold_calls)


def test_every_function_a_compiled_loop_calls_is_registered_with_numba() -> None:
    """numba compiles a loop only if every Python function it calls was registered
    (@jitable, runtime/jit.py): a rule that loses its mark breaks the fast engine at its first
    compile. Walks the loops' callees, transitively."""
    seen: dict[str, Callable[..., Any]] = {}
    todo = [_python(loop) for loop in COMPILED_LOOPS]
    while todo:
        for callee in _called(todo.pop()):
            name = f"{callee.__module__}.{callee.__name__}"
            if name not in seen:
                seen[name] = callee
                todo.append(callee)
    unregistered = sorted(name for name, func in seen.items()
                          if func not in JITABLE and name not in NATIVE_FORMS)
    assert unregistered == []
    assert {"runtime.ring.ring_push_slot", "runtime.ring.ring_pop_slot",
            "runtime.driver.sample_filter", "runtime.nodemap.node_of_pfn",
            "runtime.pghot.records.update_word", "runtime.pghot.window.window_freq",
            "runtime.profiler.discard_reason", "runtime.jiffies.jiffies_at",
            "runtime.draws.draw_memory_op", "runtime.draws.sampler_run",
            "runtime.draws.next_word", "runtime.memory.page_at_pfn"} <= set(seen)
