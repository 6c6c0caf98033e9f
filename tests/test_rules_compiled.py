"""Every scalar rule marked @jitable gives the same answer interpreted (the reference engine)
and compiled by numba (the fast engine), on inputs at every boundary of its integer fields.

One definition serves both engines, but Python ints are unbounded and numba's are int64:
a rule that leans on Python's arithmetic (a shift past bit 63, a negative modulo, a uint64
constant) would differ only when compiled. Each rule with integer parameters is called with
values at and beside the limits of every field width; errors must match too (a setter
refuses the same values either way).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import numba
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import generated
import runtime
from generated._base import JITABLE
from runtime.jit import compiled

for package in (generated, runtime):  # every module, so every rule is registered
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith(("__main__", "cli")):
            importlib.import_module(info.name)

TOP = 1 << 62
EDGES = sorted({v for bits in range(0, 63) for v in ((1 << bits) - 1, 1 << bits,
                                                       (1 << bits) + 1) if v <= TOP}
               | {0, -1, -2})
"""Values at and beside every power of two up to 2^62 (no index or time of the model comes
near int64's top, where a + 1 overflows compiled and not interpreted)."""


COMPILED_MODULES = ("generated.ibs_mprof", "generated.pghot")
"""The generated modules whose accessors compiled loops call (the other registers' come from
the same template; compiling them all would only cost time)."""


def int_rules() -> list[Callable[..., Any]]:
    out = []
    for func in JITABLE:
        if func.__module__.startswith("generated.") and func.__module__ not in COMPILED_MODULES:
            continue
        params = inspect.signature(func).parameters.values()
        if all(p.annotation in ("int", int) for p in params) and params:
            out.append(func)
    return out


RULES = int_rules()


def test_the_rules_are_found() -> None:
    names = {f.__name__ for f in RULES}
    assert {"update_record", "time_bucket", "discard_reason", "latch_data3",
            "ring_push_slot", "ibs_mprof_ctl_set_period", "window_freq"} <= names
    assert len(RULES) > 80


def outcome(func: Callable[..., Any], args: tuple[int, ...]) -> tuple[str, Any]:
    try:
        return "value", int(func(*args))
    except (ValueError, OverflowError) as exc:
        return "error", type(exc).__name__


_COMPILED: dict[int, Callable[..., Any]] = {}


def jitted(func: Callable[..., Any]) -> Callable[..., Any]:
    if id(func) not in _COMPILED:
        _COMPILED[id(func)] = compiled(func)
    return _COMPILED[id(func)]


@pytest.mark.parametrize("func", RULES, ids=lambda f: f"{f.__module__}.{f.__name__}")
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_compiled_equals_interpreted(func: Callable[..., Any], data: st.DataObject) -> None:
    arity = len(inspect.signature(func).parameters)
    args = tuple(data.draw(st.sampled_from(EDGES) | st.integers(0, TOP),
                           label=f"arg{i}") for i in range(arity))
    want = outcome(func, args)
    if want[0] == "value" and not -(1 << 63) <= want[1] < 1 << 63:
        return  # an answer int64 cannot hold: no compiled caller passes such inputs
    try:
        got = outcome(jitted(func), args)
    except numba.core.errors.TypingError as exc:  # pragma: no cover - a rule numba rejects
        pytest.fail(f"{func.__name__} does not compile: {exc}")
    assert got == want, (func.__name__, args)
